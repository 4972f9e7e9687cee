// Transparent huge pages for tests/e2e/rss_e2e_test.cpp: an anonymous
// region with four 2 MiB-aligned pieces under madvise(MADV_HUGEPAGE). It
// writes one byte in each of three pieces (where THP is allowed, one fault
// maps the whole piece: 512 pages counted at once), one small page outside
// them, then unmaps one piece and zaps another. It stops itself (SIGSTOP)
// after each step, so the test compares with /proc while nothing changes.
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

int main(void) {
  const uintptr_t huge = 2u << 20;
  char* raw = mmap(0, 6 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 1;
  char* p = (char*)(((uintptr_t)raw + huge) & ~(huge - 1));  // a small-page head stays below it
  if (madvise(p, 4 * huge, MADV_HUGEPAGE) != 0) return 2;
  raise(SIGSTOP);
  for (int i = 0; i < 3; i++) p[i * huge + 100] = 1;
  raw[0] = 1;
  raise(SIGSTOP);
  if (munmap(p + huge, huge) != 0) return 3;
  raise(SIGSTOP);
  if (madvise(p, huge, MADV_DONTNEED) != 0) return 4;
  raise(SIGSTOP);
  return 0;
}
