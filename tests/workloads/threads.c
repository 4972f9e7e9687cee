// Benchmark workload: argv[1] threads (default 8), each doing argv[2]
// (default 10000) iterations of mmap 1-4 pages / touch / munmap, all on one
// mm: exercises the tracer with concurrent producers on one process.
// Prints the wall time from the start barrier to the last join as
// elapsed_ns=<n>, then one line per thread with what it did, as the oracle
// for the tracer's per-thread attribution:
//   thread tid=<tid> pages=<n> mmaps=<n> munmaps=<n>
// Thread i maps 1 + i % 4 pages at a time, so a misattributed event shows
// in its length too. With a third argument --stop, the process stops itself
// (SIGSTOP) after the joins, so a test can compare the tracer's layout with
// /proc/PID/maps while nothing moves. ITERATIONS written as a number of
// seconds ("7s") makes each thread loop until that much time has passed
// since the start line (checked every 256 iterations): a test that needs the
// workload busy for a while, at any speed, says how long.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"

static long iterations;
static unsigned long long deadline_ns;  // 0: run `iterations` times
static size_t page;
static pthread_barrier_t start_line;

struct worker_result {
  long index;
  pid_t tid;
  long mmaps, munmaps;
};

static size_t pages_of(long index) { return (size_t)(1 + index % 4); }

static void* worker(void* arg) {
  struct worker_result* r = arg;
  size_t len = pages_of(r->index) * page;
  r->tid = gettid();
  // Every thread starts together so they really contend.
  pthread_barrier_wait(&start_line);
  for (long i = 0; deadline_ns ? (i % 256 != 0 || now_ns() < deadline_ns) : i < iterations; i++) {
    volatile char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      exit(1);
    }
    r->mmaps++;
    p[0] = (char)i;
    if (munmap((void*)p, len) != 0) {
      perror("munmap");
      exit(1);
    }
    r->munmaps++;
  }
  return NULL;
}

int main(int argc, char** argv) {
  long nthreads = argc > 1 ? strtol(argv[1], NULL, 0) : 8;
  char* unit = NULL;
  iterations = argc > 2 ? strtol(argv[2], &unit, 0) : 10000;
  unsigned long long seconds = unit && strcmp(unit, "s") == 0 ? (unsigned long long)iterations : 0;
  if (nthreads < 1 || nthreads > 4096 || iterations < 0 || (unit && *unit && !seconds)) {
    fprintf(stderr, "usage: threads [THREADS] [ITERATIONS|SECONDSs] [--stop]\n");
    return 2;
  }
  page = (size_t)sysconf(_SC_PAGESIZE);
  int stop = argc > 3 && strcmp(argv[3], "--stop") == 0;
  pthread_t* tids = calloc((size_t)nthreads, sizeof(*tids));
  struct worker_result* results = calloc((size_t)nthreads, sizeof(*results));
  if (!tids || !results) return 1;
  pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
  for (long i = 0; i < nthreads; i++) {
    results[i].index = i;
    int err = pthread_create(&tids[i], NULL, worker, &results[i]);
    if (err) {
      fprintf(stderr, "pthread_create: %s\n", strerror(err));
      return 1;
    }
  }
  unsigned long long t0 = now_ns();
  if (seconds) deadline_ns = t0 + seconds * 1000000000ull;
  pthread_barrier_wait(&start_line);
  t0 = now_ns();
  for (long i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
  printf("elapsed_ns=%llu\n", now_ns() - t0);
  for (long i = 0; i < nthreads; i++)
    printf("thread tid=%d pages=%zu mmaps=%ld munmaps=%ld\n", (int)results[i].tid, pages_of(i), results[i].mmaps,
           results[i].munmaps);
  fflush(stdout);
  free(tids);
  free(results);
  if (stop) raise(SIGSTOP);
  return 0;
}
