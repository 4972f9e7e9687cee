#pragma once
// Yama's ptrace_scope (security/yama/yama_lsm.c, yama_ptrace_access_check()),
// which ptrace_may_access() asks for PTRACE_MODE_ATTACH on top of the
// classic rules (same ids, dumpable, capabilities). As a pure function, so
// every scope is tested on a kernel without Yama; reading the sysctl is a
// thin wrapper.

#include <optional>
#include <string>

namespace vmatrace {

// What is known of the tracee's relation to vmatrace.
struct YamaTracee {
  // vmatrace itself or one of its descendants (task_is_descendant(): up
  // the real_parent chain, as /proc/PID/stat's ppid shows it).
  bool descendant = false;
  // It named vmatrace, an ancestor of vmatrace, or anyone as its ptracer
  // (prctl(PR_SET_PTRACER): ptracer_exception_found()). Not visible from
  // user space: std::nullopt when it cannot be told.
  std::optional<bool> named_tracer;
};

struct YamaVerdict {
  enum class Kind { kAllowed, kRefused, kUnknown };
  Kind kind = Kind::kAllowed;
  std::string why;  // kRefused, kUnknown: for the user
  bool allowed() const { return kind == Kind::kAllowed; }
  bool refused() const { return kind == Kind::kRefused; }
};

// Yama's answer for an attach (scope 0: classic ptrace, 1: relational,
// 2: CAP_SYS_PTRACE only, 3: no attach at all, even with it). scope is
// std::nullopt without Yama. cap_sys_ptrace: the tracer holds it (Yama
// asks in the tracee's user namespace; vmatrace asks its own).
YamaVerdict yama_judge(std::optional<int> scope, const YamaTracee& tracee, bool cap_sys_ptrace);

// /proc/sys/kernel/yama/ptrace_scope, or std::nullopt when the kernel has
// no Yama (or the file says nothing readable).
std::optional<int> yama_ptrace_scope();

}  // namespace vmatrace
