// A secret on the stack while memory grows, for tests/e2e/privacy_e2e_test.cpp:
// a random 32-character token (never in argv or the environment) is kept in
// a local buffer of the caller while a callee's malloc maps a new 1 MiB
// chunk. The token is written to the file named by argv[1], so the test can
// look for it in the recording: BPF copies the stack above the growth
// syscall's stack pointer, which holds that buffer.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void* volatile sink;

// The buffer escapes here (the compiler must assume the asm reads it), so
// it is really in memory during the malloc.
__attribute__((noinline)) void grow_under_secret(const char* secret) {
  __asm__ volatile("" : : "r"(secret) : "memory");
  sink = malloc(1 << 20);
}

__attribute__((noinline)) void hold_secret(const char* out) {
  char secret[64];
  unsigned char rnd[16];
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) _exit(2);
  char text[40];
  for (int i = 0; i < 16; i++) snprintf(text + 2 * i, 3, "%02x", rnd[i]);
  for (int i = 0; i < 32; i++) secret[i] = text[i];
  secret[32] = 0;
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, text, 32) != 32) _exit(2);
  close(fd);
  grow_under_secret(secret);
  memset(secret, 0, sizeof(secret));
  __asm__ volatile("" : : "r"(secret) : "memory");
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  hold_secret(argv[1]);
  return 0;
}
