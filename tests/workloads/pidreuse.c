// PID reuse within one trace: forks child A, which maps a layout of its own
// and exits; then forks until a child B gets A's pid back (by writing
// A's pid - 1 to /proc/sys/kernel/ns_last_pid before each fork: needs root,
// or CAP_CHECKPOINT_RESTORE), and B maps a different layout.
//
// Usage: pidreuse [--stop] [DIR]
//   --stop  A and B stop themselves (SIGSTOP) once their layout is complete,
//           so a test can compare the tracer's model with /proc/PID/maps.
//   DIR     A and B each copy /proc/self/maps into DIR/a.maps, DIR/b.maps
//           as their last act before exiting (nothing maps or unmaps after
//           that read: raw syscalls into static buffers only).
// Prints pid=<A>, then attempts=<forks it took>; exit status 0 when B got
// A's pid, 1 on failure (with the reason on stderr).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int stop_mode;
static const char* dir;
static char maps_buf[1 << 20];
static char path_buf[4096];

static void die(const char* what) {
  fprintf(stderr, "pidreuse: %s: %s\n", what, strerror(errno));
  _exit(1);
}

static void* map_or_die(size_t pages, int prot, int flags) {
  void* p = mmap(NULL, pages * 4096, prot, flags | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  return p;
}

// The child's last act: its layout as the kernel reports it, then exit.
static void finish(const char* name) {
  if (stop_mode && raise(SIGSTOP) != 0) die("raise(SIGSTOP)");
  if (dir) {
    snprintf(path_buf, sizeof(path_buf), "%s/%s.maps", dir, name);
    int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    int out = open(path_buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) die("open");
    ssize_t n, len = 0;
    while ((n = read(in, maps_buf + len, sizeof(maps_buf) - (size_t)len)) > 0) len += n;
    if (n < 0 || write(out, maps_buf, (size_t)len) != len) die("copying /proc/self/maps");
    close(in);
    close(out);
  }
  _exit(0);
}

// A: four read-write pages with the second made read-only (three VMAs),
// plus one shared page.
static void child_a(void) {
  char* p = map_or_die(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  p[0] = 1;
  if (mprotect(p + 4096, 4096, PROT_READ) != 0) die("mprotect");
  map_or_die(1, PROT_READ | PROT_WRITE, MAP_SHARED);
  finish("a");
}

// B: something else entirely: seven read-only pages, and the heap grown.
static void child_b(void) {
  map_or_die(7, PROT_READ, MAP_PRIVATE);
  if (sbrk(64 * 4096) == (void*)-1) die("sbrk");
  finish("b");
}

static int wait_child(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) die("waitpid");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--stop") == 0)
      stop_mode = 1;
    else
      dir = argv[i];
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t a = fork();
  if (a < 0) die("fork");
  if (a == 0) child_a();
  printf("pid=%d\n", (int)a);
  if (wait_child(a) != 0) {
    fprintf(stderr, "pidreuse: child A failed\n");
    return 1;
  }
  // Other processes on the machine fork too: one of them may take the pid
  // between our write and our fork. Try again until B gets it.
  for (int attempt = 1; attempt <= 1000; attempt++) {
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open /proc/sys/kernel/ns_last_pid (needs root)");
    char num[32];
    int len = snprintf(num, sizeof(num), "%d", (int)a - 1);
    if (write(fd, num, (size_t)len) != len) die("write /proc/sys/kernel/ns_last_pid");
    close(fd);
    pid_t b = fork();
    if (b < 0) die("fork");
    if (b == 0) {
      if (getpid() != a) _exit(3);
      child_b();
    }
    int st = wait_child(b);
    if (b != a) continue;
    printf("attempts=%d\n", attempt);
    if (st != 0) {
      fprintf(stderr, "pidreuse: child B failed\n");
      return 1;
    }
    return 0;
  }
  fprintf(stderr, "pidreuse: no child got pid %d back in 1000 forks\n", (int)a);
  return 1;
}
