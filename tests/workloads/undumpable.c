// A process that made itself undumpable (prctl(PR_SET_DUMPABLE, 0), as
// ssh-agent and gpg-agent do) and waits, for tests/e2e/privilege_e2e_test.cpp:
// the kernel refuses to let even its own user ptrace it without
// CAP_SYS_PTRACE, so vmatrace must refuse too. Says "ready" on stderr.
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 2;
  fputs("ready\n", stderr);
  fflush(stderr);
  sleep(60);
  return 0;
}
