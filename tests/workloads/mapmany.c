// Benchmark workload: a process with argv[1] (default 100000) VMAs. It
// reserves one region and maps it page by page with MAP_FIXED, alternating
// PROT_READ and PROT_READ|PROT_WRITE so neighbours never merge (each page is
// its own VMA), then does argv[2] (default 10000) mprotect toggles on pages
// in the middle (each merges a page with both neighbours, then splits it
// out again). vm.max_map_count (65530 by default) must allow argv[1] + the
// process's own mappings. Prints the whole run's duration as elapsed_ns=<n>
// and vmas=<count in /proc/self/maps> at the end.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"

static long count_maps(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long lines = 0;
  int c;
  while ((c = getc(f)) != EOF) lines += c == '\n';
  fclose(f);
  return lines;
}

static int prot_of(long i) { return (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ; }

int main(int argc, char** argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 0) : 100000;
  long toggles = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
  if (n < 3 || toggles < 0) {
    fprintf(stderr, "usage: mapmany [VMAS>=3] [TOGGLES]\n");
    return 2;
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned long long t0 = now_ns();
  char* base = mmap(NULL, (size_t)n * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap (reserve)");
    return 1;
  }
  for (long i = 0; i < n; i++) {
    void* p = mmap(base + (size_t)i * page, page, prot_of(i), MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
      fprintf(stderr, "mmap #%ld: %m (raise vm.max_map_count above %ld)\n", i, n + 100);
      return 1;
    }
  }
  for (long t = 0; t < toggles; t++) {
    long i = n / 4 + (t * 7919) % (n / 2);  // spread over the middle half
    char* p = base + (size_t)i * page;
    if (mprotect(p, page, prot_of(i + 1)) != 0 || mprotect(p, page, prot_of(i)) != 0) {
      perror("mprotect");
      return 1;
    }
  }
  unsigned long long t1 = now_ns();
  long vmas = count_maps();
  munmap(base, (size_t)n * page);
  printf("vmas=%ld\n", vmas);
  printf("elapsed_ns=%llu\n", t1 - t0);
  return 0;
}
