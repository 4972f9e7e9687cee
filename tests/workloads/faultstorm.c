// Benchmark workload: one anonymous mapping of argv[1] pages (default
// 262144, 1 GiB), touched once per page. MADV_NOHUGEPAGE keeps it at one
// fault per 4 KiB page instead of one per 2 MiB THP, so the fault count is
// known. Prints the touch loop's duration as elapsed_ns=<n>.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"

int main(int argc, char** argv) {
  long pages = argc > 1 ? strtol(argv[1], NULL, 0) : 262144;
  if (pages < 1) {
    fprintf(stderr, "usage: faultstorm [PAGES]\n");
    return 2;
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = (size_t)pages * page;
  volatile char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  if (madvise((void*)p, len, MADV_NOHUGEPAGE) != 0) {
    perror("madvise(MADV_NOHUGEPAGE)");
    return 1;
  }
  unsigned long long t0 = now_ns();
  for (size_t off = 0; off < len; off += page) p[off] = 1;
  unsigned long long t1 = now_ns();
  munmap((void*)p, len);
  printf("elapsed_ns=%llu\n", t1 - t0);
  return 0;
}
