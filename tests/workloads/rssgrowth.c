// Resident growth from known call sites, for tests/e2e/rss_e2e_test.cpp
// (report --rss): fill_table() mallocs 8 MiB and writes all of it,
// lazy_table() mallocs 8 MiB and writes only its first 4 MiB. Both are
// above glibc's mmap threshold, so each is its own anonymous mmap.
// `rssgrowth hold SECONDS` then forks a child and both stay that long, for
// the live view's tmux test (two followed processes, a stable layout).
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(int argc, char** argv) {
  fill_table();
  lazy_table();
  if (argc == 3 && strcmp(argv[1], "hold") == 0) {
    const unsigned secs = (unsigned)atoi(argv[2]);
    const pid_t child = fork();
    if (child < 0) return 1;
    sleep(secs);
    if (child > 0) waitpid(child, NULL, 0);
  }
  return 0;
}
