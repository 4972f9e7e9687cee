// The benchmark workloads' clock: CLOCK_MONOTONIC in nanoseconds, what they
// print as elapsed_ns=<n> (and timed as cmd_wall_ns=<n>).
#pragma once

#include <time.h>

static inline unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}
