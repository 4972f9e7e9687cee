// Page-fault hotspot workload with known answers. Three anonymous mappings
// get exactly 4096, 256 and 16 write faults (one per page: MADV_NOHUGEPAGE,
// and a PROT_NONE guard page on each side so no two of them can merge);
// with --file PATH, PATH is mapped read-only and each page read (major
// faults when its page cache was dropped first). With --many N, N one-page
// VMAs follow in one region (alternately read-only and read-write, so no two
// merge, between PROT_NONE guard pages), each faulted once (a read or a
// write): a VMA tree several levels deep. Prints each mapping's range as
// "anonN=START-END" / "file=START-END" / "many=START-END". With --stop it stops itself
// (SIGSTOP) before exiting, so a test can read /proc/PID/stat while the
// process still exists and nothing faults.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char* guarded_map(size_t pages, size_t page) {
  char* base = mmap(NULL, (pages + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  char* p = base + page;
  if (mprotect(p, pages * page, PROT_READ | PROT_WRITE) || madvise(p, pages * page, MADV_NOHUGEPAGE)) {
    perror("mprotect/madvise");
    exit(1);
  }
  return p;
}

// n one-page VMAs, each faulted once; returns the first.
static char* many_vmas(long n, size_t page) {
  char* base = mmap(NULL, (size_t)(n + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap (many)");
    exit(1);
  }
  for (long i = 0; i < n; i++) {
    char* p = base + (size_t)(i + 1) * page;
    int prot = (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ;
    if (mmap(p, page, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
      fprintf(stderr, "mmap #%ld: %m (vm.max_map_count)\n", i);
      exit(1);
    }
  }
  for (long i = 0; i < n; i++) {
    volatile char* p = base + (size_t)(i + 1) * page;
    if (i & 1)
      *p = 1;  // a write fault
    else
      (void)*p;  // a read fault (the zero page)
  }
  return base + page;
}

int main(int argc, char** argv) {
  int stop = 0;
  long many = 0;
  const char* file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--stop"))
      stop = 1;
    else if (!strcmp(argv[i], "--file") && i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--many") && i + 1 < argc && (many = strtol(argv[++i], NULL, 0)) > 0)
      ;
    else {
      fprintf(stderr, "usage: faultpages [--stop] [--file PATH] [--many N]\n");
      return 2;
    }
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t counts[3] = {4096, 256, 16};
  char* maps[3];
  for (int m = 0; m < 3; m++) maps[m] = guarded_map(counts[m], page);
  for (int m = 0; m < 3; m++)
    for (size_t i = 0; i < counts[m]; i++) ((volatile char*)maps[m])[i * page] = 1;
  for (int m = 0; m < 3; m++) printf("anon%d=%p-%p\n", m, (void*)maps[m], (void*)(maps[m] + counts[m] * page));
  if (many) {
    char* first = many_vmas(many, page);
    printf("many=%p-%p\n", (void*)first, (void*)(first + (size_t)many * page));
  }
  if (file) {
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
      perror(file);
      return 1;
    }
    const volatile char* f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f == MAP_FAILED) {
      perror("mmap file");
      return 1;
    }
    madvise((void*)f, (size_t)st.st_size, MADV_RANDOM);  // one read per fault: many major faults
    unsigned sum = 0;
    for (off_t off = 0; off < st.st_size; off += (off_t)page) sum += (unsigned char)f[off];
    printf("file=%p-%p sum=%u\n", (void*)f, (void*)(f + st.st_size), sum);
  }
  fflush(stdout);
  if (stop) raise(SIGSTOP);
  return 0;
}
