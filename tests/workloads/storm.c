// Benchmark workload: N times (argv[1], default 100000) map one anonymous
// page, touch it and unmap it, so every iteration costs the tracer exactly
// one mmap, one page fault and one munmap. argv[2] (default 1) sets the
// pages per mapping, which lets tests look for one mmap of a known length;
// argv[3] (default 0) milliseconds to stay alive after the loop.
// Prints the loop's duration as elapsed_ns=<n>.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"

int main(int argc, char** argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 0) : 100000;
  long pages = argc > 2 ? strtol(argv[2], NULL, 0) : 1;
  long linger_ms = argc > 3 ? strtol(argv[3], NULL, 0) : 0;
  if (n < 0 || pages < 1 || linger_ms < 0) {
    fprintf(stderr, "usage: storm [ITERATIONS] [PAGES] [LINGER_MS]\n");
    return 2;
  }
  size_t len = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
  unsigned long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    volatile char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    p[0] = (char)i;  // one page fault per iteration
    if (munmap((void*)p, len) != 0) {
      perror("munmap");
      return 1;
    }
  }
  printf("elapsed_ns=%llu\n", now_ns() - t0);
  if (linger_ms > 0) {
    struct timespec d = {linger_ms / 1000, (linger_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
  }
  return 0;
}
