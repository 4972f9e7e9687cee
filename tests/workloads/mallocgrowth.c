// Memory growth through each allocator path, each from its own function, for
// tests/e2e/malloc_e2e_test.cpp. For every step it writes one line to the
// file named by argv[1] (never to stdout: its buffer would be a malloc):
//   step FUNCTION ALLOCATOR VIA PTR SIZE [BRK_BEFORE BRK_AFTER]
// ALLOCATOR is "-" for the direct mmap, which must not be attributed. For
// brk (the main heap) and mprotect (a thread's arena heap) BEFORE/AFTER are
// the end of the heap's writable part before and after the growth.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int log_fd = -1;
static void* volatile sink;

static void step(const char* fn, const char* alloc, const char* via, void* p, size_t size, uintptr_t b0, uintptr_t b1) {
  char line[256];
  int n = snprintf(line, sizeof(line), "step %s %s %s %p %zu %#lx %#lx\n", fn, alloc, via, p, size, (unsigned long)b0,
                   (unsigned long)b1);
  if (write(log_fd, line, (size_t)n) != n) _exit(2);
}

// Many small mallocs until the main arena has to move the break.
__attribute__((noinline)) void small_mallocs_grow_heap(void) {
  uintptr_t before = (uintptr_t)sbrk(0);
  void* last = NULL;
  for (int i = 0; i < 100000 && (uintptr_t)sbrk(0) == before; i++) last = sink = malloc(200);
  step(__func__, "malloc", "brk", last, 200, before, (uintptr_t)sbrk(0));
}

__attribute__((noinline)) void one_mib_malloc(void) {
  void* p = sink = malloc(1 << 20);
  step(__func__, "malloc", "mmap", p, 1 << 20, 0, 0);
}

__attribute__((noinline)) void large_calloc(void) {
  void* p = sink = calloc(1024, 4096);
  step(__func__, "calloc", "mmap", p, 4 << 20, 0, 0);
}

__attribute__((noinline)) void large_posix_memalign(void) {
  void* p = NULL;
  if (posix_memalign(&p, 4096, 3 << 20)) _exit(3);
  sink = p;
  step(__func__, "posix_memalign", "mmap", p, 3 << 20, 0, 0);
}

// A large (mmapped) block grown to 8 MiB: glibc moves it with mremap.
__attribute__((noinline)) void realloc_to_8mib(void) {
  void* p = malloc(2 << 20);
  step(__func__, "malloc", "mmap", p, 2 << 20, 0, 0);
  p = sink = realloc(p, 8 << 20);
  step(__func__, "realloc", "mremap", p, (8 << 20) - (2 << 20), 0, 0);
}

// Not an allocator: must be reported as such.
__attribute__((noinline)) void direct_mmap(void) {
  void* p = mmap(NULL, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(4);
  sink = p;
  step(__func__, "-", "mmap", p, 256 << 10, 0, 0);
}

// The end of the mapping holding p, from /proc/self/maps (read without
// stdio: its buffer would come from this thread's arena).
static uintptr_t mapping_end(void* p) {
  static char buf[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) _exit(5);
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  buf[n] = 0;
  for (char* line = buf; line && *line;) {
    char* end;
    unsigned long lo = strtoul(line, &end, 16), hi = strtoul(end + 1, NULL, 16);
    if ((uintptr_t)p >= lo && (uintptr_t)p < hi) return hi;
    line = strchr(line, '\n');
    if (line) line++;
  }
  return 0;
}

// A thread's first malloc creates its arena: a PROT_NONE reservation (not a
// growth) whose first part is made writable (a growth, via mprotect).
__attribute__((noinline)) void* thread_first_malloc(void) { return sink = malloc(200); }

// Then the arena's heap grows by mprotect of more of its reservation.
__attribute__((noinline)) void thread_small_mallocs(void* first) {
  uintptr_t before = mapping_end(first), after = before;
  void* last = NULL;
  for (int i = 0; i < 1000000 && after == before; i++) {
    last = sink = malloc(200);
    if (i % 64 == 0) after = mapping_end(first);
  }
  after = mapping_end(first);
  step(__func__, "malloc", "mprotect", last, 200, before, after);
}

static void* arena_thread(void* arg) {
  (void)arg;
  thread_small_mallocs(thread_first_malloc());
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mallocgrowth STEPS_FILE\n");
    return 1;
  }
  log_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return 1;
  sink = malloc(1);  // the main arena's first heap, so the next step measures a growth
  small_mallocs_grow_heap();
  one_mib_malloc();
  large_calloc();
  large_posix_memalign();
  realloc_to_8mib();
  direct_mmap();
  pthread_t t;
  if (pthread_create(&t, NULL, arena_thread, NULL) || pthread_join(t, NULL)) return 6;
  close(log_fd);
  return 0;
}
