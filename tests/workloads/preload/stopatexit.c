// LD_PRELOAD helper for tests: a real program that does not stop itself
// (a C compiler) checkpoints at two known moments: once its dynamic loader
// has mapped everything (before main) and once it is done (after main and
// the other destructors: a preloaded object is finalised last). At each one
// the process sends itself SIGSTOP, and the e2e harness compares vmatrace's
// layout with /proc/PID/maps while it sits stopped.
#include <signal.h>

__attribute__((constructor)) static void stop_after_loading(void) { raise(SIGSTOP); }

__attribute__((destructor)) static void stop_before_exit(void) { raise(SIGSTOP); }
