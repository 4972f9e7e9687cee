// Benchmark helper: runs argv[1..] as a child, waits for it and prints, on
// stdout, its wall time and the CPU time (user + system) it and its waited-for
// descendants used: cmd_wall_ns=<n> cmd_cpu_ns=<n> cmd_maxrss_kb=<n> cmd_end_ns=<n>. A
// tracer runs `timed CMD`, so the harness measures the command alone (not
// the tracer's start-up) and can subtract the command's CPU from the
// tracer's. Exits with the child's status.
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"

static unsigned long long tv_ns(struct timeval tv) {
  return (unsigned long long)tv.tv_sec * 1000000000ull + (unsigned long long)tv.tv_usec * 1000ull;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: timed CMD [ARGS...]\n");
    return 2;
  }
  fflush(stdout);
  unsigned long long t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    fprintf(stderr, "timed: %s: %m\n", argv[1]);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("wait4");
    return 1;
  }
  unsigned long long end = now_ns();
  // cmd_end_ns: CLOCK_MONOTONIC when the command ended, so the harness can
  // tell how long a tracer took to finish after it.
  printf("cmd_wall_ns=%llu cmd_cpu_ns=%llu cmd_maxrss_kb=%ld cmd_end_ns=%llu\n", end - t0,
         tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime), ru.ru_maxrss, end);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
