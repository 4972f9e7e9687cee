// Resident growth from known call sites, for tests/e2e/rss_e2e_test.cpp
// (report --rss): fill_table() mallocs 8 MiB and writes all of it,
// lazy_table() mallocs 8 MiB and writes only its first 4 MiB. Both are
// above glibc's mmap threshold, so each is its own anonymous mmap.
#include <stdlib.h>
#include <string.h>

static void* volatile sink;

__attribute__((noinline)) void fill_table(void) {
  char* p = malloc(8 << 20);
  if (!p) exit(1);
  memset(p, 1, 8 << 20);
  sink = p;
}

__attribute__((noinline)) void lazy_table(void) {
  char* p = malloc(8 << 20);
  if (!p) exit(1);
  memset(p, 1, 4 << 20);
  sink = p;
}

int main(void) {
  fill_table();
  lazy_table();
  return 0;
}
