// Test workload: known address-space operations, each followed by a
// "checkpoint" (raise(SIGSTOP)) so a test can compare the tracer's rebuilt
// layout with /proc/PID/maps while nothing moves, then SIGCONT it.
//
// Usage: checkpoints [stopfirst] [STEP...]
//   stopfirst  stop once before anything else (lets a test attach with -p)
//   STEP       run only these steps, in the order below (default: all):
//              merge mprotect munmap mremap file deleted shanon brk stack
//              thread dlopen dontfork mlock pkey shm fork
// Prints nothing on stdout (tests compare it); failures go to stderr and
// exit non-zero, so a test can tell "workload broke" from "model wrong".
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static size_t page;

static void die(const char* what) {
  fprintf(stderr, "checkpoints: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void checkpoint(void) {
  // SIGSTOP stops every thread of the process; the test resumes it with SIGCONT.
  if (raise(SIGSTOP) != 0) die("raise(SIGSTOP)");
}

// A free range of `pages` pages: reserve it, then give it back, so the
// caller can place MAP_FIXED_NOREPLACE mappings into it knowing nothing
// else is there (this process maps nothing concurrently).
static char* free_range(size_t pages) {
  char* p = mmap(NULL, pages * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(reserve)");
  if (munmap(p, pages * page) != 0) die("munmap(reserve)");
  return p;
}

static char* map_fixed(char* at, size_t len, int prot) {
  char* p = mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) die("mmap(MAP_FIXED_NOREPLACE)");
  if (p != at) {
    errno = EEXIST;
    die("mmap(MAP_FIXED_NOREPLACE) placed elsewhere");
  }
  return p;
}

static void touch(char* p, size_t len) {
  for (size_t off = 0; off < len; off += page) ((volatile char*)p)[off] = 1;
}

// The merge/mprotect/munmap steps work on this region; a guard page of free
// space on each side keeps the test independent of the neighbours.
static char* region;
static const size_t kRegionPages = 10;

static void step_merge(void) {
  char* base = free_range(kRegionPages + 2) + page;
  // Ten separate mmaps at consecutive pages: each one merges with the
  // previous, leaving one VMA.
  for (size_t i = 0; i < kRegionPages; i++) map_fixed(base + i * page, page, PROT_READ | PROT_WRITE);
  touch(base, kRegionPages * page);
  region = base;
  checkpoint();
}

static void step_mprotect(void) {
  if (!region) step_merge();
  // The middle becomes read-only: one VMA splits into three ...
  if (mprotect(region + 3 * page, 3 * page, PROT_READ) != 0) die("mprotect(PROT_READ)");
  checkpoint();
  // ... and back: the three merge into one again.
  if (mprotect(region + 3 * page, 3 * page, PROT_READ | PROT_WRITE) != 0) die("mprotect(PROT_READ|PROT_WRITE)");
  checkpoint();
}

static void step_munmap(void) {
  if (!region) step_merge();
  if (munmap(region, page) != 0) die("munmap(head)");  // the VMA shrinks from below
  checkpoint();
  if (munmap(region + 5 * page, page) != 0) die("munmap(middle)");  // splits in two
  checkpoint();
  if (munmap(region + page, (kRegionPages - 1) * page) != 0) die("munmap(rest)");
  region = NULL;
}

static void step_mremap(void) {
  char* base = free_range(16);
  char* p = map_fixed(base, 4 * page, PROT_READ | PROT_WRITE);
  touch(p, 4 * page);
  // Grow in place: the 12 pages after it are free (reserved above).
  char* q = mremap(p, 4 * page, 8 * page, 0);
  if (q == MAP_FAILED) die("mremap(grow in place)");
  touch(q, 8 * page);
  checkpoint();
  // A read-only blocker right after it (different flags: never merges)
  // forces the next growth to move the mapping.
  char* blocker = map_fixed(q + 8 * page, page, PROT_READ);
  char* r = mremap(q, 8 * page, 12 * page, MREMAP_MAYMOVE);
  if (r == MAP_FAILED) die("mremap(grow, move)");
  if (r == q) {
    errno = EEXIST;
    die("mremap(grow, move) did not move");
  }
  checkpoint();
  char* s = mremap(r, 12 * page, 2 * page, 0);
  if (s == MAP_FAILED) die("mremap(shrink)");
  checkpoint();
  if (munmap(s, 2 * page) != 0 || munmap(blocker, page) != 0) die("munmap(mremap step)");
}

// A temp file in /tmp of `pages` pages filled with a pattern; returns its fd.
static int temp_file(size_t pages, char* name, size_t name_len) {
  snprintf(name, name_len, "/tmp/vmatrace-checkpoints-XXXXXX");
  int fd = mkstemp(name);
  if (fd < 0) die("mkstemp");
  char* buf = malloc(page);
  if (!buf) die("malloc");
  for (size_t i = 0; i < pages; i++) {
    memset(buf, 'a' + (int)(i % 26), page);
    if (write(fd, buf, page) != (ssize_t)page) die("write(temp file)");
  }
  free(buf);
  return fd;
}

static void step_file(void) {
  char name[64];
  int fd = temp_file(8, name, sizeof name);
  // Private read-only at page 2, shared read-write at page 4: offsets and
  // the 'p'/'s' flag show in maps.
  char* priv = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE, fd, 2 * page);
  if (priv == MAP_FAILED) die("mmap(file, private)");
  char* shared = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4 * page);
  if (shared == MAP_FAILED) die("mmap(file, shared)");
  volatile char sink = priv[0];
  (void)sink;
  shared[0] = 'X';
  shared[page] = 'Y';
  close(fd);  // the mappings keep the file
  checkpoint();
  if (munmap(priv, 3 * page) != 0 || munmap(shared, 2 * page) != 0) die("munmap(file)");
  unlink(name);
}

static void step_deleted(void) {
  char name[64];
  int fd = temp_file(4, name, sizeof name);
  char* p = mmap(NULL, 4 * page, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("mmap(file to delete)");
  close(fd);
  // maps now shows the path followed by " (deleted)".
  if (unlink(name) != 0) die("unlink");
  checkpoint();
  if (munmap(p, 4 * page) != 0) die("munmap(deleted file)");
}

static void step_shanon(void) {
  // Shared anonymous memory is a shmem file: maps shows "/dev/zero (deleted)".
  char* p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(MAP_SHARED|MAP_ANONYMOUS)");
  touch(p, 4 * page);
  checkpoint();
  if (munmap(p, 4 * page) != 0) die("munmap(shared anon)");
}

static void step_brk(void) {
  const intptr_t mib = 1 << 20;
  char* old = sbrk(mib);
  if (old == (void*)-1) die("sbrk(+1 MiB)");
  touch(old, (size_t)mib);
  checkpoint();
  if (sbrk(-mib) == (void*)-1) die("sbrk(-1 MiB)");
  checkpoint();
}

// ~2 MiB of stack below the initial few hundred KiB: 512 frames of 4 KiB,
// each page written so the stack VMA grows by faults.
static int recurse(int depth) {
  volatile char frame[4096];
  frame[0] = (char)depth;
  frame[sizeof frame - 1] = (char)depth;
  // The frame's address escapes: without this, clang keeps only the two
  // bytes used and the stack never grows (the ASan build compiles the
  // workloads with clang).
  __asm__ volatile("" : : "r"(frame) : "memory");
  if (depth == 0) {
    checkpoint();  // at the deepest point, with the grown stack in use
    return frame[0];
  }
  return recurse(depth - 1) + frame[sizeof frame - 1];
}

static void step_stack(void) {
  if (recurse(512) == 42) fprintf(stderr, "checkpoints: unlikely\n");
}

static void* thread_main(void* arg) {
  (void)arg;
  char* p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(in thread)");
  touch(p, 2 * page);
  checkpoint();  // from the thread: stops the whole process all the same
  munmap(p, 2 * page);
  return NULL;
}

static void step_thread(void) {
  pthread_t t;
  // Default attributes: glibc maps the stack and mprotects its guard page.
  int err = pthread_create(&t, NULL, thread_main, NULL);
  if (err) {
    errno = err;
    die("pthread_create");
  }
  pthread_join(t, NULL);
  checkpoint();  // the stack stays in glibc's cache after the join
}

static void step_dlopen(void) {
  // libz is on every Debian 12 system (dpkg depends on it) and this binary
  // does not link it, so dlopen maps it fresh.
  const char* lib = "/lib/x86_64-linux-gnu/libz.so.1";
  if (access(lib, R_OK) != 0) {
    fprintf(stderr, "checkpoints: %s missing, skipping the dlopen step\n", lib);
    return;
  }
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "checkpoints: dlopen: %s\n", dlerror());
    exit(1);
  }
  checkpoint();
  dlclose(h);
  checkpoint();
}

static void step_dontfork(void) {
  char* p = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(dontfork)");
  touch(p, 8 * page);
  // VM_DONTCOPY on the middle: the VMA splits into three.
  if (madvise(p + 2 * page, 2 * page, MADV_DONTFORK) != 0) die("madvise(MADV_DONTFORK)");
  checkpoint();
  if (munmap(p, 8 * page) != 0) die("munmap(dontfork)");
}

static void step_mlock(void) {
  char* p = map_fixed(free_range(kRegionPages + 2) + page, kRegionPages * page, PROT_READ | PROT_WRITE);
  touch(p, kRegionPages * page);
  // VM_LOCKED on the middle: one VMA splits into three (mlock_fixup()) ...
  if (mlock(p + 3 * page, 3 * page) != 0) die("mlock");
  checkpoint();
  // ... and munlock merges them back.
  if (munlock(p + 3 * page, 3 * page) != 0) die("munlock");
  checkpoint();
  // VM_LOCKED|VM_LOCKONFAULT: split in three again.
  if (mlock2(p + 3 * page, 3 * page, MLOCK_ONFAULT) != 0) die("mlock2(MLOCK_ONFAULT)");
  checkpoint();
  // Every VMA becomes VM_LOCKED (the middle loses VM_LOCKONFAULT and the
  // three merge), and mm->def_flags locks later mappings too.
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) die("mlockall(MCL_CURRENT|MCL_FUTURE)");
  checkpoint();
  char* q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) die("mmap(after mlockall)");
  checkpoint();
  if (munlockall() != 0) die("munlockall");
  checkpoint();
  if (munmap(q, 2 * page) != 0 || munmap(p, kRegionPages * page) != 0) die("munmap(mlock step)");
}

static void step_pkey(void) {
  char* p = map_fixed(free_range(6) + page, 4 * page, PROT_READ | PROT_WRITE);
  touch(p, 4 * page);
  // A protection key where the CPU has them, else pkey -1: mprotect's
  // rules. The raw syscall: glibc's pkey_mprotect() turns pkey -1 into mprotect().
  int pkey = pkey_alloc(0, 0);
  if (pkey < 0) pkey = -1;
  if (syscall(SYS_pkey_mprotect, p + page, 2 * page, PROT_READ, pkey) != 0) die("pkey_mprotect(PROT_READ)");
  checkpoint();
  // Back to read-write: with pkey -1 the three merge again; with a key the
  // middle keeps it and stays apart.
  if (syscall(SYS_pkey_mprotect, p + page, 2 * page, PROT_READ | PROT_WRITE, pkey) != 0)
    die("pkey_mprotect(PROT_READ|PROT_WRITE)");
  checkpoint();
  if (pkey >= 0) pkey_free(pkey);
  if (munmap(p, 4 * page) != 0) die("munmap(pkey step)");
}

static void step_shm(void) {
  // One SysV segment attached twice, side by side: maps shows each as
  // "/SYSV00000000 (deleted)" (IPC_PRIVATE's key), rw-s; the two never merge.
  int id = shmget(IPC_PRIVATE, 3 * page, IPC_CREAT | 0600);
  if (id < 0) die("shmget");
  char* base = free_range(8) + page;
  char* a = shmat(id, base, 0);
  if (a == (void*)-1) die("shmat(first)");
  char* b = shmat(id, base + 3 * page, SHM_RDONLY);
  if (b == (void*)-1) die("shmat(second, SHM_RDONLY)");
  touch(a, 3 * page);
  checkpoint();
  // Split the first attach in three: shmdt() must unmap all its pieces.
  if (mprotect(a + page, page, PROT_READ) != 0) die("mprotect(shm)");
  checkpoint();
  if (shmdt(a) != 0) die("shmdt(first)");
  checkpoint();
  // Marked for removal: still mapped, unchanged, until the last detach.
  if (shmctl(id, IPC_RMID, NULL) != 0) die("shmctl(IPC_RMID)");
  checkpoint();
  if (shmdt(b) != 0) die("shmdt(second)");
  checkpoint();
}

static void step_fork(void) {
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    char* p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap(in child)");
    touch(p, 3 * page);
    checkpoint();  // the child's own checkpoint
    _exit(0);
  }
  int st = 0;
  if (waitpid(child, &st, 0) != child) die("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "checkpoints: forked child failed (status %#x)\n", st);
    exit(1);
  }
  checkpoint();
}

struct step {
  const char* name;
  void (*fn)(void);
};

static const struct step steps[] = {
    {"merge", step_merge}, {"mprotect", step_mprotect}, {"munmap", step_munmap}, {"mremap", step_mremap},
    {"file", step_file},   {"deleted", step_deleted},   {"shanon", step_shanon}, {"brk", step_brk},
    {"stack", step_stack}, {"thread", step_thread},     {"dlopen", step_dlopen}, {"dontfork", step_dontfork},
    {"mlock", step_mlock}, {"pkey", step_pkey},         {"shm", step_shm},       {"fork", step_fork},
};
#define NSTEPS (sizeof steps / sizeof steps[0])

int main(int argc, char** argv) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  int selected[NSTEPS] = {0};
  int any = 0;
  int stop_first = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "stopfirst") == 0) {
      stop_first = 1;
      continue;
    }
    size_t j = 0;
    while (j < NSTEPS && strcmp(steps[j].name, argv[i]) != 0) j++;
    if (j == NSTEPS) {
      fprintf(stderr, "checkpoints: unknown step '%s'\n", argv[i]);
      return 2;
    }
    selected[j] = 1;
    any = 1;
  }
  if (stop_first) checkpoint();
  for (size_t j = 0; j < NSTEPS; j++)
    if (!any || selected[j]) steps[j].fn();
  return 0;
}
