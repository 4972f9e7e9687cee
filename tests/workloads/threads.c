// Benchmark workload: argv[1] threads (default 8), each doing argv[2]
// (default 10000) iterations of mmap one page / touch / munmap, all on one
// mm: exercises the tracer with concurrent producers on one process.
// Prints the wall time from the start barrier to the last join as
// elapsed_ns=<n>.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long iterations;
static size_t page;
static pthread_barrier_t start_line;

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void* worker(void* arg) {
  (void)arg;
  // Every thread starts together so they really contend.
  pthread_barrier_wait(&start_line);
  for (long i = 0; i < iterations; i++) {
    volatile char* p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      exit(1);
    }
    p[0] = (char)i;
    if (munmap((void*)p, page) != 0) {
      perror("munmap");
      exit(1);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  long nthreads = argc > 1 ? strtol(argv[1], NULL, 0) : 8;
  iterations = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
  if (nthreads < 1 || nthreads > 4096 || iterations < 0) {
    fprintf(stderr, "usage: threads [THREADS] [ITERATIONS]\n");
    return 2;
  }
  page = (size_t)sysconf(_SC_PAGESIZE);
  pthread_t* tids = calloc((size_t)nthreads, sizeof(*tids));
  if (!tids) return 1;
  pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
  for (long i = 0; i < nthreads; i++) {
    int err = pthread_create(&tids[i], NULL, worker, NULL);
    if (err) {
      fprintf(stderr, "pthread_create: %s\n", strerror(err));
      return 1;
    }
  }
  pthread_barrier_wait(&start_line);
  unsigned long long t0 = now_ns();
  for (long i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
  printf("elapsed_ns=%llu\n", now_ns() - t0);
  free(tids);
  return 0;
}
