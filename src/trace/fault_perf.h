#pragma once
// The perf software events that tell major from minor page faults
// (page-faults-maj / page-faults-min, counted by the kernel in
// mm_account_fault()). kprobes and fentry are unavailable on some kernels we
// run on; these events need neither. Each fd is owned until a BPF link
// takes it over (libbpf closes a perf link's event fd when the link dies).
//
// Two ways to open them: per traced thread, inherited by what it creates
// (only the traced processes run the programs: measured, the per-CPU pair
// cost an untraced storm beside a trace about 0.1x of its CPU), or per CPU
// (every fault of every process runs them), for a trace whose processes
// join on their own (--cgroup, --comm) and as the fallback.

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace vmatrace {

struct FaultPerfEvents {
  std::vector<UniqueFd> major;  // one per online CPU, disabled until attached
  std::vector<UniqueFd> minor;
  std::string error;  // why they could not be opened ("" when ok)

  bool ok() const { return error.empty() && !major.empty(); }
  // Opens one of each per online CPU (sample_period 1, system-wide, kernel
  // mode included: copy_to_user faults count too). Never throws: on any
  // failure all are closed and `error` says why.
  static FaultPerfEvents open();
  // Opens one of each for thread `tid` with inherit: the threads and
  // processes it creates from now on get copies, and each copy runs the
  // parent event's BPF program (perf_event_alloc() hands it over; 4.x on).
  // Both empty and no error when the thread is gone (ESRCH).
  static FaultPerfEvents open_task(pid_t tid);
};

// "" when the events can be opened here, else the reason (for `features`).
std::string probe_fault_perf();

}  // namespace vmatrace
