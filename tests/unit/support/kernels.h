#pragma once
// Fake kernels for the attach planner's tests (a pure function of the probed
// features), and what its answers are checked with.

#include <string>
#include <vector>

#include "trace/features.h"
#include "util/errors.h"

namespace vmatrace::test {

// This machine: no kprobes (CONFIG_KPROBES off), fentry refused.
inline Features kernel_618() {
  Features f;
  f.btf = true;
  f.tracefs = true;
  f.syscall_tracepoints = true;
  f.task_vma_iter = true;
  f.fentry_error = "load refused (EPERM)";
  return f;
}

// Debian's 6.1 in the VM: fentry and kprobes both work.
inline Features kernel_61() {
  Features f = kernel_618();
  f.task_vma_iter = false;
  f.kprobes = true;
  f.fentry = true;
  f.fentry_error.clear();
  return f;
}

// Kprobes but no trampolines (e.g. an arch or lockdown without fentry).
inline Features kernel_kprobes_only() {
  Features f = kernel_61();
  f.fentry = false;
  f.fentry_error = "attach to __x64_sys_brk refused (ENOTSUPP)";
  return f;
}

// The same two kernels as the vma family sees them: this machine (6.18) has
// maple_tree:ma_write, the VM's 6.1 everything.
inline Features with_vma_family(Features f) {
  f.maple_tree_tp = true;
  f.vma_fentry_error.clear();
  return f;
}
inline Features host_618() { return with_vma_family(kernel_618()); }
inline Features vm_61() { return with_vma_family(kernel_61()); }

inline bool mentions(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x.find(s) != std::string::npos) return true;
  return false;
}

// The UserError plan_attach() throws, or "(no error)".
inline std::string user_error(const Features& f, const ForcedModes& forced) {
  try {
    plan_attach(f, forced);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace vmatrace::test
