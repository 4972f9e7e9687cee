// Attach workload (issue 15): a thread moves one region back and forth
// between two far-apart addresses (mremap MREMAP_FIXED, as fast as it can)
// while argv[2] one-page VMAs that cannot merge (alternating protections,
// default 3000) lie between the two places. A layout read by walking the
// address space while this runs (/proc/PID/maps, a VMA iterator that does
// not hold the mmap lock for the whole walk) can pass the low place while
// the region is high and the high one after it moved back: it then shows
// the region at neither place, or at both, a layout the process never had.
// Runs for argv[1] milliseconds (default 600000), then exits 0; prints
// "ready" once the thread runs.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { kRegionPages = 4 };

static size_t page;
static char* low;
static char* high;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void* mover(void* arg) {
  (void)arg;
  char* at = low;
  for (unsigned long n = 0;; n++) {
    char* to = at == low ? high : low;
    if (mremap(at, kRegionPages * page, kRegionPages * page, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
      die("mremap");
    at = to;
    at[0]++;  // keep a page in it: a move carries page tables
  }
  return NULL;
}

int main(int argc, char** argv) {
  long run_ms = argc > 1 ? atol(argv[1]) : 600000;
  long between = argc > 2 ? atol(argv[2]) : 3000;
  page = (size_t)sysconf(_SC_PAGESIZE);
  // guard | low region | 2*between pages alternating ---p / r--p | guard | high region | guard
  size_t total = (1 + kRegionPages + 2 * (size_t)between + 1 + kRegionPages + 1) * page;
  char* base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) die("mmap reservation");
  low = base + page;
  char* middle = low + kRegionPages * page;
  for (long i = 0; i < between; i++)
    if (mprotect(middle + (2 * (size_t)i + 1) * page, page, PROT_READ)) die("mprotect");
  high = middle + (2 * (size_t)between + 1) * page;
  if (mmap(low, kRegionPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
      MAP_FAILED)
    die("mmap region");
  low[0] = 1;
  // The high place starts as a hole: the region moves into it and back.
  if (munmap(high, kRegionPages * page)) die("munmap high");
  pthread_t t;
  if (pthread_create(&t, NULL, mover, NULL)) die("pthread_create");
  printf("ready\n");
  fflush(stdout);
  struct timespec d = {run_ms / 1000, (run_ms % 1000) * 1000000L};
  nanosleep(&d, NULL);
  return 0;
}
