// Large allocations, each from its own function, for the replacement
// allocator tests (tests/e2e/details_e2e_test.cpp: jemalloc preloaded).
// For every allocation it writes one line to the file named by argv[1]
// (never to stdout: its buffer would be a malloc):
//   step FUNCTION PTR SIZE
// Each block is larger than anything the allocator holds at start, so its
// memory comes from a growth (an mmap) made inside the call.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int log_fd = -1;
static void* volatile sink;

static void step(const char* fn, void* p, size_t size) {
  char line[160];
  int n = snprintf(line, sizeof(line), "step %s %p %zu\n", fn, p, size);
  if (!p || write(log_fd, line, (size_t)n) != n) _exit(2);
  memset(p, 1, 4096);  // touched: a real use
}

__attribute__((noinline)) void big_malloc(void) {
  void* p = sink = malloc(64 << 20);
  step(__func__, p, 64 << 20);
}

__attribute__((noinline)) void big_calloc(void) {
  void* p = sink = calloc(96, 1 << 20);
  step(__func__, p, 96 << 20);
}

__attribute__((noinline)) void big_posix_memalign(void) {
  void* p = NULL;
  if (posix_memalign(&p, 1 << 16, 160 << 20)) _exit(3);
  sink = p;
  step(__func__, p, 160 << 20);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: allocsites STEPS_FILE\n");
    return 1;
  }
  log_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return 1;
  big_malloc();
  big_calloc();
  big_posix_memalign();
  close(log_fd);
  return 0;
}
