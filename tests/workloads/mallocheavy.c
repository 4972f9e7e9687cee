// Benchmark workload: argv[1] (default 5000000) small malloc/free pairs
// (16..271 bytes) over a ring of 64 live blocks, with occasional growth:
// every 1024th block is kept for good (the heap grows by brk), and every
// 65536th pair also allocates and frees a 256 KiB block (above glibc's mmap
// threshold: one mmap and one munmap). Each block is written so the pair
// cannot be optimised away. Prints the loop's duration as elapsed_ns=<n>
// and what it did (pairs=, kept=, big=) for the harness to check.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timing.h"

int main(int argc, char** argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 0) : 5000000;
  if (n < 0) {
    fprintf(stderr, "usage: mallocheavy [PAIRS]\n");
    return 2;
  }
  enum { kRing = 64, kKeepEvery = 1024, kBigEvery = 65536, kBig = 256 * 1024 };
  char* ring[kRing] = {0};
  size_t kept_cap = (size_t)n / kKeepEvery + 1, kept = 0, big = 0;
  char** keep = calloc(kept_cap, sizeof(*keep));
  if (!keep) return 1;
  unsigned long long sum = 0;
  unsigned long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    size_t slot = (size_t)i % kRing;
    if (i % kKeepEvery == kKeepEvery - 1 && kept < kept_cap) {
      keep[kept++] = ring[slot];  // grows the live set: the heap's top moves
    } else {
      free(ring[slot]);
    }
    size_t size = 16 + (size_t)((i * 7) & 255);
    ring[slot] = malloc(size);
    if (!ring[slot]) {
      perror("malloc");
      return 1;
    }
    ring[slot][0] = (char)i;
    ring[slot][size - 1] = (char)i;
    sum += (unsigned char)ring[slot][0];
    if (i % kBigEvery == kBigEvery - 1) {
      char* b = malloc(kBig);
      if (!b) {
        perror("malloc");
        return 1;
      }
      memset(b, 1, 4096);
      sum += (unsigned char)b[4095];
      free(b);
      big++;
    }
  }
  unsigned long long t1 = now_ns();
  for (int i = 0; i < kRing; i++) free(ring[i]);
  for (size_t i = 0; i < kept; i++) free(keep[i]);
  free(keep);
  printf("pairs=%ld kept=%zu big=%zu checksum=%llu\n", n, kept, big, sum);
  printf("elapsed_ns=%llu\n", t1 - t0);
  return 0;
}
