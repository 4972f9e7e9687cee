// Least privilege (issue 22): holding CAP_BPF and CAP_PERFMON must not let a
// user read the layout and stacks of processes they could not ptrace.
// Without CAP_SYS_PTRACE, `-p` and followed children are limited to what the
// kernel's ptrace_may_access() allows. Run as root with capabilities dropped
// from the bounding set by capsh (as Robustness.LeastPrivilegeCapabilities).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::RunResult;

// `sh -c cmd` under capsh with every capability but `keep` dropped.
RunResult with_caps(const std::vector<std::string>& keep, const std::string& cmd) {
  auto print = e2e::run_command({"capsh", "--print"});
  std::smatch m;
  if (!std::regex_search(print.out, m, std::regex(R"(Bounding set =(\S+))"))) return {1, "", "capsh: no bounding set"};
  std::string drop, all = m[1];
  for (size_t i = 0; i <= all.size();) {
    size_t j = all.find(',', i);
    if (j == std::string::npos) j = all.size();
    std::string cap = all.substr(i, j - i);
    if (!cap.empty() && std::find(keep.begin(), keep.end(), cap) == keep.end()) drop += (drop.empty() ? "" : ",") + cap;
    i = j + 1;
  }
  return e2e::run_command({"capsh", "--drop=" + drop, "--", "-c", cmd});
}

const std::vector<std::string> kTracing = {"cap_bpf", "cap_perfmon", "cap_dac_read_search"};
std::vector<std::string> plus(std::vector<std::string> v, std::initializer_list<std::string> more) {
  v.insert(v.end(), more);
  return v;
}

TEST(Privilege, AttachToAnotherUsersProcessNeedsCapSysPtrace) {
  ASSERT_EQ(::access("/usr/sbin/capsh", X_OK) == 0 || ::access("/sbin/capsh", X_OK) == 0, true)
      << "capsh missing (apt-get install libcap2-bin)";
  // A process of uid 65534 (nobody), which uid 0 without CAP_SYS_PTRACE may not ptrace.
  e2e::Subprocess other({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"});
  const std::string pid = std::to_string(other.pid());
  const std::string trace_p = e2e::vmatrace_bin() + " trace --faults=off -p " + pid;
  auto refused = with_caps(kTracing, trace_p);
  EXPECT_NE(refused.status, 0) << e2e::describe(refused);
  EXPECT_EQ(e2e::count_lines(refused.err), 1u) << e2e::describe(refused);
  EXPECT_NE(refused.err.find("not allowed to trace pid " + pid), std::string::npos) << e2e::describe(refused);
  EXPECT_NE(refused.err.find("CAP_SYS_PTRACE"), std::string::npos) << e2e::describe(refused);
  // With CAP_SYS_PTRACE the same attach works (interrupted after 10 s).
  auto allowed = with_caps(plus(kTracing, {"cap_sys_ptrace"}), "timeout -s INT 10 " + trace_p);
  EXPECT_EQ(allowed.err.find("not allowed"), std::string::npos) << e2e::describe(allowed);
  EXPECT_NE(allowed.err.find("pid " + pid), std::string::npos) << "no banner\n" << e2e::describe(allowed);
}

TEST(Privilege, FollowedChildThatChangesUserIsNoLongerTraced) {
  // The traced shell's child drops to uid 65534 and then execs sleep: from
  // that exec on, the invoking user could not ptrace it.
  const std::string cmd = e2e::vmatrace_bin() +
                          " trace --faults=off -- sh -c 'setpriv --reuid=65534 --regid=65534 --clear-groups "
                          "/bin/sleep 1; /bin/true'";
  auto limited = with_caps(plus(kTracing, {"cap_setuid", "cap_setgid"}), cmd);
  EXPECT_EQ(limited.status, 0) << e2e::describe(limited);
  EXPECT_NE(limited.err.find("stopped following pid"), std::string::npos) << e2e::describe(limited);
  EXPECT_EQ(limited.out.find("sleep"), std::string::npos) << "events of the refused process\n"
                                                          << e2e::describe(limited);
  EXPECT_NE(limited.out.find(" true "), std::string::npos) << "the rest is still traced\n" << e2e::describe(limited);
  // With CAP_SYS_PTRACE it is followed to the end: the check above can fail.
  auto full = with_caps(plus(kTracing, {"cap_setuid", "cap_setgid", "cap_sys_ptrace"}), cmd);
  EXPECT_EQ(full.status, 0) << e2e::describe(full);
  EXPECT_EQ(full.err.find("stopped following"), std::string::npos) << e2e::describe(full);
  EXPECT_NE(full.out.find("sleep"), std::string::npos) << e2e::describe(full);
}

}  // namespace
