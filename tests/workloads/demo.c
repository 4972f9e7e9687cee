// The demo workload: a little of everything vmatrace shows. Grows the heap
// with small mallocs, makes a large malloc (an mmap), maps a file, changes
// protections in the middle of a mapping, locks part of one, attaches a
// SysV shared memory segment, grows a mapping with mremap, and touches pages
// so faults land in known places. Calls that an unprivileged user may be
// refused (mlock beyond RLIMIT_MEMLOCK, no SysV IPC) are allowed to fail.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  long page = sysconf(_SC_PAGESIZE);
  // Small allocations until the heap grows a few times.
  void* small[2000];
  for (int i = 0; i < 2000; i++) {
    small[i] = malloc(200);
    memset(small[i], 1, 200);
  }
  // A large allocation: glibc serves it with mmap.
  char* big = malloc(1 << 20);
  memset(big, 2, 1 << 20);

  // A file mapping at an offset.
  char path[] = "/tmp/vmatrace-demo-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) {
    if (ftruncate(fd, 4 * page) == 0) {
      char* f = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE, fd, page);
      if (f != MAP_FAILED) {
        volatile char c = f[0];
        (void)c;
        munmap(f, 2 * page);
      }
    }
    close(fd);
    unlink(path);
  }

  // Split a mapping with mprotect, then merge it back.
  char* m = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 1;
  memset(m, 3, 8 * page);
  mprotect(m + 2 * page, 2 * page, PROT_READ);
  mprotect(m + 2 * page, 2 * page, PROT_READ | PROT_WRITE);
  // The same with a protection key (-1: none; the raw syscall, since
  // glibc's pkey_mprotect() turns -1 into mprotect()).
  syscall(SYS_pkey_mprotect, m + 2 * page, 2 * page, PROT_READ, -1);
  syscall(SYS_pkey_mprotect, m + 2 * page, 2 * page, PROT_READ | PROT_WRITE, -1);
  // Lock part of it (VM_LOCKED splits it), then unlock; lock on fault.
  if (mlock(m + 4 * page, 2 * page) == 0) munlock(m + 4 * page, 2 * page);
  if (mlock2(m + 4 * page, page, MLOCK_ONFAULT) == 0) munlock(m + 4 * page, page);
  // Lock what is mapped from now on, then nothing.
  mlockall(MCL_FUTURE);
  munlockall();
  // A SysV shared memory segment, attached and detached.
  int shm = shmget(IPC_PRIVATE, 2 * page, IPC_CREAT | 0600);
  if (shm >= 0) {
    char* s = shmat(shm, NULL, 0);
    if (s != (void*)-1) {
      s[0] = 5;
      shmdt(s);
    }
    shmctl(shm, IPC_RMID, NULL);
  }
  // Grow it (in place when there is room, else moved).
  char* g = mremap(m, 8 * page, 64 * page, MREMAP_MAYMOVE);
  if (g != MAP_FAILED) {
    g[63 * page] = 4;
    munmap(g, 64 * page);
  }

  free(big);
  for (int i = 0; i < 2000; i++) free(small[i]);
  // On stderr: stdout is usually shared with vmatrace's event stream.
  fprintf(stderr, "demo done\n");
  return 0;
}
