#pragma once
// Holding a live process still while its layout is read, so that the read
// is one consistent snapshot: every thread is put in a ptrace stop
// (PTRACE_SEIZE + PTRACE_INTERRUPT, which the process cannot see: no
// signal is queued, its parent's wait() reports nothing) and let go at
// destruction. A thread stops only on its way back to user space, so no
// memory syscall of the process is in flight while it is held: each one
// ended before the freeze (its record is older than the freeze time) or
// starts after it.
//
// Why not the kernel's VMA walk: neither BPF task_vma iterator holds the
// mmap lock for a whole walk on this project's kernels. The seq-file one
// drops it whenever the reader's buffer fills (kernel/bpf/task_iter.c,
// task_vma_seq_stop()), and since commit bee9ef4a40a2 ("bpf: switch
// task_vma iterator from mmap_lock to per-VMA locks", Linux 7.1, in 6.18.y
// stable) the open-coded one takes one VMA lock at a time and skips a VMA
// that is being written.

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace vmatrace {

class ProcessFreeze {
 public:
  // Stops every thread of pid (threads it starts meanwhile too), waiting at
  // most timeout_ms for each. Not frozen (nothing held, why_not() says
  // why) when ptrace is refused (another tracer, no permission) or a
  // thread does not stop in time (blocked in the kernel).
  // on_reaped: a thread that ended while held, with its wait status (the
  // tracer's wait consumed it: for the process's own parent, if that is
  // us, this is the only report of the leader's exit).
  using OnReaped = std::function<void(pid_t tid, int status)>;
  explicit ProcessFreeze(pid_t pid, OnReaped on_reaped = {}, int timeout_ms = 1000);
  ~ProcessFreeze();
  ProcessFreeze(const ProcessFreeze&) = delete;
  ProcessFreeze& operator=(const ProcessFreeze&) = delete;

  bool frozen() const { return frozen_; }
  const std::string& why_not() const { return why_not_; }
  size_t threads() const { return held_.size(); }
  // Lets every thread go now (the destructor does it otherwise).
  void release();

 private:
  struct Held {
    pid_t tid;
    int signal;  // a signal the stop intercepted, given back at detach
    bool stopped;
  };
  bool seize_new(pid_t pid, int timeout_ms);
  bool wait_stopped(Held& h, int timeout_ms);

  void reaped(Held& h, int status);
  void let_go(Held& h);

  pid_t pid_;
  std::vector<Held> held_;
  OnReaped on_reaped_;
  bool frozen_ = false;
  std::string why_not_;
};

}  // namespace vmatrace
