// Benchmark workload (not a test): millions of small malloc/free pairs, with
// a slowly growing set of live blocks so the heap grows now and then.
//   mallocbench [PAIRS]   (default 5000000)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  long pairs = argc > 1 ? atol(argv[1]) : 5000000;
  enum { kKeep = 1 << 16 };
  static void* keep[kKeep];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned long sum = 0;
  for (long i = 0; i < pairs; i++) {
    size_t sz = 16 + (size_t)(i % 240);
    char* p = malloc(sz);
    p[0] = (char)i;
    sum += (unsigned char)p[0];
    free(p);
    if (i % 100 == 0) keep[(i / 100) % kKeep] = malloc(sz);  // occasional growth
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  fprintf(stderr, "mallocbench: %ld pairs in %.3f s (%.1f ns/pair) sum %lu\n", pairs, s, s * 1e9 / (double)pairs, sum);
  return keep[0] == (void*)1;
}
