// A process whose threads map memory, change credentials while running on
// (no exec), and map memory again, for tests/e2e/privilege_e2e_test.cpp:
// without CAP_SYS_PTRACE, nothing after the change may be traced once the
// tracer may no longer ptrace it.
//
//   credchange setresuid   glibc's setresgid + setresuid to 65534 (every
//                          thread changes: glibc's setxid broadcast)
//   credchange thread      the raw setresuid syscall to 65534 in one worker
//                          thread only (credentials are per thread)
//   credchange dumpable    prctl(PR_SET_DUMPABLE, 0): same user, undumpable
//
// Each of the main thread and its 2 workers maps 21 pages before the change
// and 23 pages after it (sizes nothing else here maps). Says "changed" on
// stderr after the change, "done" at the end. Needs CAP_SETUID/CAP_SETGID
// for the set*id modes.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { kWorkers = 2, kBeforePages = 21, kAfterPages = 23, kNobody = 65534 };

static pthread_barrier_t mapped_before, changed, mapped_after;
static int thread_mode;

static int map_pages(int pages) {
  void* p = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  memset(p, 1, (size_t)pages * 4096);
  return 0;
}

static void* worker(void* arg) {
  int first = arg != NULL;
  if (map_pages(kBeforePages)) return (void*)1;
  pthread_barrier_wait(&mapped_before);
  // thread mode: the first worker alone changes its uid (the raw syscall,
  // not glibc's wrapper, which would change every thread's).
  if (thread_mode && first) {
    sleep(1);  // as main() does before its change
    if (syscall(SYS_setresuid, kNobody, kNobody, kNobody) != 0) {
      perror("setresuid");
      return (void*)1;
    }
  }
  pthread_barrier_wait(&changed);
  if (map_pages(kAfterPages)) return (void*)1;
  pthread_barrier_wait(&mapped_after);
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  thread_mode = strcmp(mode, "thread") == 0;
  if (!thread_mode && strcmp(mode, "setresuid") != 0 && strcmp(mode, "dumpable") != 0) {
    fprintf(stderr, "usage: credchange setresuid|thread|dumpable\n");
    return 2;
  }
  pthread_barrier_init(&mapped_before, NULL, kWorkers + 1);
  pthread_barrier_init(&changed, NULL, kWorkers + 1);
  pthread_barrier_init(&mapped_after, NULL, kWorkers + 1);
  pthread_t t[kWorkers];
  for (int i = 0; i < kWorkers; i++)
    if (pthread_create(&t[i], NULL, worker, i == 0 ? (void*)1 : NULL) != 0) return 1;
  if (map_pages(kBeforePages)) return 1;
  pthread_barrier_wait(&mapped_before);
  // The tracer checks the exec record when it reads it: a tracer lagging
  // behind would find the change already made and refuse from the exec on.
  sleep(1);
  if (strcmp(mode, "setresuid") == 0) {
    if (setresgid(kNobody, kNobody, kNobody) != 0 || setresuid(kNobody, kNobody, kNobody) != 0) {
      perror("setresuid");
      return 1;
    }
  } else if (strcmp(mode, "dumpable") == 0) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 1;
  }
  pthread_barrier_wait(&changed);
  fputs("changed\n", stderr);
  if (map_pages(kAfterPages)) return 1;
  pthread_barrier_wait(&mapped_after);
  for (int i = 0; i < kWorkers; i++) {
    void* r;
    pthread_join(t[i], &r);
    if (r) return 1;
  }
  fputs("done\n", stderr);
  return 0;
}
