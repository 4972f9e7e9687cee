// Attach workload (issue 15): a heap of argv[1] pieces (default 100000:
// every other page of a large brk area made read-only, so no two neighbours
// merge), then brk() up one page, a touch, and brk() down again, as fast as
// it can, for argv[2] milliseconds (default 600000). What stress-ng --brk's
// worker looked like when an attach lost a million events: the layout to
// read at the attach is huge, and the stream never pauses. Prints "ready"
// once the heap is built; at the end, on stderr, the longest time one
// round took (how long an attach held it still).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char** argv) {
  long pieces = argc > 1 ? atol(argv[1]) : 100000;
  long run_ms = argc > 2 ? atol(argv[2]) : 600000;
  long page = sysconf(_SC_PAGESIZE);
  char* base = sbrk(0);
  if (sbrk(2 * pieces * page) == (void*)-1) {
    perror("sbrk");
    return 1;
  }
  for (long i = 0; i < pieces; i++)
    if (mprotect(base + (2 * i + 1) * page, (size_t)page, PROT_READ)) {
      perror("mprotect");
      return 1;
    }
  printf("ready\n");
  fflush(stdout);
  const long long start = now_ns();
  long long last = start, longest = 0;
  for (;;) {
    char* p = sbrk(page);
    if (p == (void*)-1) {
      perror("sbrk up");
      return 1;
    }
    p[0] = 1;
    if (sbrk(-page) == (void*)-1) {
      perror("sbrk down");
      return 1;
    }
    const long long now = now_ns();
    if (now - last > longest) longest = now - last;
    last = now;
    if ((now - start) / 1000000 >= run_ms) break;
  }
  fprintf(stderr, "longest round %.1f ms\n", (double)longest / 1e6);
  return 0;
}
