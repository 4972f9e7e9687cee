// Fidelity workload: argv[1] threads (default 4) churning one address space
// for argv[2] milliseconds (default 3000), each on its own slots of private
// and shared anonymous mappings (MAP_SHARED|MAP_ANONYMOUS: "/dev/zero
// (deleted)"): map, touch, mprotect a middle page away and back (a split
// the kernel merges again), mremap (grow in place or move), munmap. The
// threads run concurrently on one mm, so their syscalls contend for
// mmap_lock: what a tracer sees under threads, and what an attach catches
// in flight. Tests stop it from outside and compare /proc/PID/maps with the
// tracer's layout. Prints "ready" once every thread runs. argv[3]: the pause
// between rounds of 64 steps, in microseconds (default 200; the soak's
// long-running attach target uses a gentler pace).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { kSlots = 8 };

static size_t page;
static long run_ms;
static long pause_us = 200;
static pthread_barrier_t start_line;

struct slot {
  char* addr;
  size_t len;
  size_t file_len;  // shared: the shmem object's size (touching past it is SIGBUS); else 0
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

// xorshift: each thread its own sequence, no shared state.
static uint32_t next_rand(uint32_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void touch(struct slot* sl) {
  size_t len = sl->file_len && sl->file_len < sl->len ? sl->file_len : sl->len;
  for (size_t off = 0; off < len; off += page) sl->addr[off] = 1;
}

static void map_slot(struct slot* sl, uint32_t* rnd) {
  size_t pages = 1 + next_rand(rnd) % 8;
  int shared = next_rand(rnd) % 2;
  sl->len = pages * page;
  sl->file_len = shared ? sl->len : 0;
  sl->addr = mmap(NULL, sl->len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
  if (sl->addr == MAP_FAILED) die("mmap");
  touch(sl);
}

static void step(struct slot* sl, uint32_t* rnd) {
  if (!sl->addr) {
    map_slot(sl, rnd);
    return;
  }
  switch (next_rand(rnd) % 5) {
    case 0:  // split in the middle, then merge back
      if (sl->len >= 3 * page) {
        if (mprotect(sl->addr + page, page, PROT_READ)) die("mprotect");
        if (mprotect(sl->addr + page, page, PROT_READ | PROT_WRITE)) die("mprotect back");
      }
      break;
    case 1: {  // grow, in place when the kernel can, else moved
      size_t len = sl->len + page * (1 + next_rand(rnd) % 4);
      void* p = mremap(sl->addr, sl->len, len, MREMAP_MAYMOVE);
      if (p == MAP_FAILED) die("mremap");
      sl->addr = p;
      sl->len = len;
      touch(sl);
      break;
    }
    case 2:  // shrink
      if (sl->len >= 2 * page) {
        size_t len = sl->len - page;
        void* p = mremap(sl->addr, sl->len, len, 0);
        if (p == MAP_FAILED) die("mremap shrink");
        sl->len = len;
      }
      break;
    case 3:  // read-only for a while: a split when it is the middle of a merge
      if (mprotect(sl->addr, page, PROT_READ)) die("mprotect head");
      if (mprotect(sl->addr, page, PROT_READ | PROT_WRITE)) die("mprotect head back");
      break;
    default:
      if (munmap(sl->addr, sl->len)) die("munmap");
      sl->addr = NULL;
      break;
  }
}

static void* worker(void* arg) {
  uint32_t rnd = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  struct slot slots[kSlots] = {0};
  pthread_barrier_wait(&start_line);
  uint64_t end = now_ms() + (uint64_t)run_ms;
  while (now_ms() < end) {
    for (int i = 0; i < 64; i++) step(&slots[next_rand(&rnd) % kSlots], &rnd);
    usleep((useconds_t)pause_us);  // room for the stops from outside
  }
  for (int i = 0; i < kSlots; i++)
    if (slots[i].addr) munmap(slots[i].addr, slots[i].len);
  return NULL;
}

int main(int argc, char** argv) {
  long threads = argc > 1 ? atol(argv[1]) : 4;
  run_ms = argc > 2 ? atol(argv[2]) : 3000;
  if (argc > 3) pause_us = atol(argv[3]);
  if (threads < 1 || threads > 64 || run_ms < 1 || pause_us < 0 || pause_us > 1000000) {
    fprintf(stderr, "usage: churnthreads [THREADS (1-64)] [MILLISECONDS] [PAUSE_US (0-1000000)]\n");
    return 2;
  }
  page = (size_t)sysconf(_SC_PAGESIZE);
  pthread_t tid[64];
  pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1);
  for (long i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, worker, (void*)(uintptr_t)(i + 1))) die("pthread_create");
  pthread_barrier_wait(&start_line);
  printf("ready\n");
  fflush(stdout);
  for (long i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  return 0;
}
