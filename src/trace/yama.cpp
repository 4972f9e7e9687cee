#include "trace/yama.h"

#include <fstream>

namespace vmatrace {

YamaVerdict yama_judge(std::optional<int> scope, const YamaTracee& tracee, bool cap_sys_ptrace) {
  using K = YamaVerdict::Kind;
  const std::string sysctl = "kernel.yama.ptrace_scope is " + std::to_string(scope.value_or(0));
  if (!scope || *scope <= 0) return {K::kAllowed, ""};  // YAMA_SCOPE_DISABLED
  if (*scope == 1) {                                    // YAMA_SCOPE_RELATIONAL
    if (tracee.descendant || tracee.named_tracer.value_or(false) || cap_sys_ptrace) return {K::kAllowed, ""};
    const std::string rule = sysctl +
                             ": only vmatrace's own descendants, or processes that name it with "
                             "prctl(PR_SET_PTRACER), may be traced without CAP_SYS_PTRACE; start it under vmatrace "
                             "(vmatrace trace -- CMD) or grant CAP_SYS_PTRACE";
    if (!tracee.named_tracer) return {K::kUnknown, rule};
    return {K::kRefused, rule};
  }
  if (*scope == 2) {  // YAMA_SCOPE_CAPABILITY
    if (cap_sys_ptrace) return {K::kAllowed, ""};
    return {K::kRefused, sysctl + ": only a tracer holding CAP_SYS_PTRACE may trace; grant it"};
  }
  // YAMA_SCOPE_NO_ATTACH (the sysctl takes nothing above 3).
  return {K::kRefused, sysctl + ": no process may ptrace another, with or without CAP_SYS_PTRACE"};
}

std::optional<int> yama_ptrace_scope() {
  std::ifstream f("/proc/sys/kernel/yama/ptrace_scope");
  int scope = 0;
  if (!(f >> scope)) return std::nullopt;
  return scope;
}

}  // namespace vmatrace
