// Least privilege (issue 22): holding CAP_BPF and CAP_PERFMON must not let a
// user read the layout and stacks of processes they could not ptrace.
// Without CAP_SYS_PTRACE, `-p` and followed children are limited to what the
// kernel's ptrace_may_access() allows. Run as root with capabilities dropped
// from the bounding set by capsh (as Robustness.LeastPrivilegeCapabilities).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::RunResult;

// The argv of `sh -c cmd` under capsh with every capability but `keep`
// dropped (empty when capsh cannot say what the bounding set is).
std::vector<std::string> caps_argv(const std::vector<std::string>& keep, const std::string& cmd) {
  auto print = e2e::run_command({"capsh", "--print"});
  std::smatch m;
  if (!std::regex_search(print.out, m, std::regex(R"(Bounding set =(\S+))"))) return {};
  std::string drop, all = m[1];
  for (size_t i = 0; i <= all.size();) {
    size_t j = all.find(',', i);
    if (j == std::string::npos) j = all.size();
    std::string cap = all.substr(i, j - i);
    if (!cap.empty() && std::find(keep.begin(), keep.end(), cap) == keep.end()) drop += (drop.empty() ? "" : ",") + cap;
    i = j + 1;
  }
  return {"capsh", "--drop=" + drop, "--", "-c", cmd};
}

RunResult with_caps(const std::vector<std::string>& keep, const std::string& cmd) {
  auto argv = caps_argv(keep, cmd);
  if (argv.empty()) return {1, "", "capsh: no bounding set"};
  return e2e::run_command(argv);
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

// Same user, but undumpable (prctl(PR_SET_DUMPABLE, 0)): ptrace_may_access()
// refuses it without CAP_SYS_PTRACE, and so does vmatrace.
TEST(Privilege, UndumpableProcessOfTheSameUserNeedsCapSysPtrace) {
  e2e::Subprocess target({e2e::workload("undumpable")});
  for (int i = 0; i < 500 && target.stderr_text().find("ready") == std::string::npos; i++) ::usleep(10'000);
  ASSERT_NE(target.stderr_text().find("ready"), std::string::npos) << "the workload did not start";
  const std::string pid = std::to_string(target.pid());
  const std::string trace_p = e2e::vmatrace_bin() + " trace --faults=off -p " + pid;
  auto refused = with_caps(kTracing, trace_p);
  EXPECT_NE(refused.status, 0) << e2e::describe(refused);
  EXPECT_EQ(e2e::count_lines(refused.err), 1u) << e2e::describe(refused);
  EXPECT_NE(refused.err.find("not allowed to trace pid " + pid), std::string::npos) << e2e::describe(refused);
  auto allowed = with_caps(plus(kTracing, {"cap_sys_ptrace"}), "timeout -s INT 3 " + trace_p);
  EXPECT_EQ(allowed.err.find("not allowed"), std::string::npos) << e2e::describe(allowed);
  EXPECT_NE(allowed.err.find("pid " + pid), std::string::npos) << "no banner\n" << e2e::describe(allowed);
}

// -p follows the children that already exist too: one of another user is
// neither read nor recorded without CAP_SYS_PTRACE (and is with it).
TEST(Privilege, AttachSkipsExistingChildrenTheUserMayNotPtrace) {
  // The parent holds no capability the tracer lacks (else the kernel
  // refuses it too: cap_ptrace_access_check()); its child drops to uid 65534.
  const auto caps = plus(kTracing, {"cap_setuid", "cap_setgid"});
  e2e::Subprocess parent(
      caps_argv(caps, "setpriv --reuid=65534 --regid=65534 --clear-groups sleep 60 & exec sleep 60"));
  const std::string ppid = std::to_string(parent.pid());
  std::string child;
  for (int i = 0; i < 500 && child.empty(); i++) {
    auto kids = e2e::read_file("/proc/" + ppid + "/task/" + ppid + "/children").value_or("");
    struct stat st {};
    std::string k = kids.substr(0, kids.find(' '));
    // Once setpriv has dropped to uid 65534.
    if (!k.empty() && ::stat(("/proc/" + k).c_str(), &st) == 0 && st.st_uid == 65534) child = k;
    if (child.empty()) ::usleep(10'000);
  }
  ASSERT_FALSE(child.empty()) << "no child of uid 65534";
  e2e::TempDir dir;
  auto record = [&](const std::vector<std::string>& caps, const std::string& rec) {
    auto r =
        with_caps(caps, "timeout -s INT 3 " + e2e::vmatrace_bin() + " record --faults=off -o " + rec + " -p " + ppid);
    auto info = e2e::run_command({e2e::vmatrace_bin(), "info", "--privacy", rec});
    EXPECT_EQ(info.status, 0) << e2e::describe(info);
    return std::pair{r, info.out};
  };
  const std::regex child_line("\n +" + child + " "), parent_line("\n +" + ppid + " ");
  auto [limited, limited_info] = record(caps, dir.file("limited.vmat"));
  EXPECT_NE(limited.err.find("not tracing pid " + child), std::string::npos) << e2e::describe(limited);
  EXPECT_TRUE(std::regex_search(limited_info, parent_line)) << limited_info;
  EXPECT_FALSE(std::regex_search(limited_info, child_line)) << "the refused child is in the recording\n"
                                                            << limited_info;
  auto [full, full_info] = record(plus(caps, {"cap_sys_ptrace"}), dir.file("full.vmat"));
  EXPECT_EQ(full.err.find("not tracing"), std::string::npos) << e2e::describe(full);
  EXPECT_TRUE(std::regex_search(full_info, child_line)) << full_info;
}

// --cgroup: a member of another user is neither read nor recorded without
// CAP_SYS_PTRACE; the invoking user's own member is. With CAP_SYS_PTRACE
// both are.
TEST(Privilege, CgroupMembersTheUserMayNotPtraceAreNotTraced) {
  for (bool ptrace : {false, true}) {
    SCOPED_TRACE(ptrace ? "with CAP_SYS_PTRACE" : "without CAP_SYS_PTRACE");
    e2e::Cgroup2 cg("vmatrace-priv");
    // Ours holds no capability the tracer lacks (cap_ptrace_access_check()).
    e2e::Subprocess mine(caps_argv(kTracing, "exec sleep 60"));
    e2e::Subprocess theirs({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"});
    ::usleep(300'000);  // both exec'd sleep
    cg.add(mine.pid());
    cg.add(theirs.pid());
    e2e::TempDir dir;
    const std::string rec = dir.file("rec.vmat");
    auto caps = ptrace ? plus(kTracing, {"cap_sys_ptrace"}) : kTracing;
    auto t = with_caps(
        caps, "timeout -s INT 3 " + e2e::vmatrace_bin() + " record --faults=off -o " + rec + " --cgroup " + cg.path());
    auto info = e2e::run_command({e2e::vmatrace_bin(), "info", "--privacy", rec});
    ASSERT_EQ(info.status, 0) << e2e::describe(info) << e2e::describe(t);
    const std::regex mine_line("\n +" + std::to_string(mine.pid()) + " "),
        theirs_line("\n +" + std::to_string(theirs.pid()) + " ");
    EXPECT_TRUE(std::regex_search(info.out, mine_line)) << "the user's own member is traced\n" << info.out;
    if (ptrace) {
      EXPECT_TRUE(std::regex_search(info.out, theirs_line)) << info.out;
      EXPECT_EQ(t.err.find("not tracing"), std::string::npos) << e2e::describe(t);
    } else {
      EXPECT_FALSE(std::regex_search(info.out, theirs_line)) << "another user's member is in the recording\n"
                                                             << info.out;
      EXPECT_NE(t.err.find("not tracing pid " + std::to_string(theirs.pid())), std::string::npos) << e2e::describe(t);
    }
  }
}

// Fail-closed (issue 22): a followed child that was reaped before vmatrace
// could check that the user may ptrace it keeps the permission of the
// parent it was forked from only until an exec that could change its
// credentials: here a set-user-ID copy of true owned by uid 65534 (run by
// uid 0, it runs as euid 65534, which the user may not ptrace). The traced
// shell stops vmatrace (SIGSTOP, every thread stopped), runs three children
// that record their pids and exec it, and only then continues vmatrace:
// when it sees their forks and execs they are gone. Without
// CAP_SYS_PTRACE nothing from the set-ID exec on is shown, each child is
// named (-v) and the summary counts them; the exec of sh before it, which
// changes nothing, is followed. With CAP_SYS_PTRACE all of it is there.
TEST(Privilege, ChildReapedBeforeTheCheckIsNotFollowedPastASetIdExec) {
  for (bool ptrace : {false, true}) {
    SCOPED_TRACE(ptrace ? "with CAP_SYS_PTRACE" : "without CAP_SYS_PTRACE");
    e2e::TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0) << std::strerror(errno);
    const std::string pids = dir.file("pids"), suid = dir.file("suidtrue");
    std::filesystem::copy_file("/bin/true", suid);
    ASSERT_EQ(::chown(suid.c_str(), 65534, 65534), 0) << std::strerror(errno);
    ASSERT_EQ(::chmod(suid.c_str(), 04755), 0) << std::strerror(errno);
    // Builtins only between the stop and the continue, but for the three
    // children: $PPID is vmatrace.
    const std::string script =
        "kill -STOP $PPID; "
        "while read -r p c s rest < /proc/$PPID/stat && [ \"$s\" != T ]; do :; done; "
        "for i in 1 2 3; do /bin/sh -c 'echo $$ >> " +
        pids + "; exec " + suid +
        "'; done; "
        "kill -CONT $PPID; exec sleep 0.5";
    e2e::write_file(dir.file("run.sh"), script);
    auto caps = ptrace ? plus(kTracing, {"cap_sys_ptrace"}) : kTracing;
    auto t = with_caps(caps, e2e::vmatrace_bin() + " trace -v --faults=off -- sh " + dir.file("run.sh"));
    EXPECT_EQ(t.status, 0) << e2e::describe(t);
    const auto children = e2e::split_lines(e2e::read_file(pids).value_or(""));
    ASSERT_EQ(children.size(), 3u) << "the children did not run\n" << e2e::describe(t);
    for (const auto& child : children) {
      // Event lines of the child: "  TS PID/TID comm ...".
      const std::regex as_sh("(^|\n) *\\S+ +" + child + "/\\d+ sh "),
          as_suid("(^|\n) *\\S+ +" + child + "/\\d+ suidtrue ");
      const std::string named = "not following pid " + child + ": it exited before";
      EXPECT_TRUE(std::regex_search(t.out, as_sh)) << "child " << child << " before its set-ID exec\n"
                                                   << e2e::describe(t);
      if (ptrace) {
        EXPECT_TRUE(std::regex_search(t.out, as_suid)) << "child " << child << "\n" << e2e::describe(t);
        EXPECT_EQ(t.err.find(named), std::string::npos) << e2e::describe(t);
      } else {
        EXPECT_FALSE(std::regex_search(t.out, as_suid))
            << "events of child " << child << " after its set-ID exec, whose permission was never established\n"
            << e2e::describe(t);
        EXPECT_NE(t.err.find(named), std::string::npos) << e2e::describe(t);
      }
    }
    const std::string summary = "3 processes exited before vmatrace could check that you may ptrace them";
    if (ptrace)
      EXPECT_EQ(t.err.find("exited before vmatrace could check"), std::string::npos) << e2e::describe(t);
    else
      EXPECT_NE(t.err.find(summary), std::string::npos) << e2e::describe(t);
  }
}

// The gap the frontend's check alone leaves: a child that changes its user
// (set*id) and then execs a plain file, reaped before vmatrace reads its
// records. Its exec of /bin/true is judged in the kernel at the exec
// (uid 65534 is not the tracer's): nothing of it from there on, and it is
// named. vmatrace is paused (as above) while three children run
// `setpriv --reuid=65534 ... /bin/true` and are reaped. With
// CAP_SYS_PTRACE the true processes are all there: the check can fail.
TEST(Privilege, ChildReapedBeforeTheCheckIsNotFollowedPastASetIdThenPlainExec) {
  for (bool ptrace : {false, true}) {
    SCOPED_TRACE(ptrace ? "with CAP_SYS_PTRACE" : "without CAP_SYS_PTRACE");
    e2e::TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0) << std::strerror(errno);
    const std::string pids = dir.file("pids");
    const std::string script =
        "kill -STOP $PPID; "
        "while read -r p c s rest < /proc/$PPID/stat && [ \"$s\" != T ]; do :; done; "
        "for i in 1 2 3; do /bin/sh -c 'echo $$ >> " +
        pids +
        "; exec setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true'; done; "
        "kill -CONT $PPID; exec sleep 0.5";
    e2e::write_file(dir.file("run.sh"), script);
    auto caps = ptrace ? plus(kTracing, {"cap_setuid", "cap_setgid", "cap_sys_ptrace"})
                       : plus(kTracing, {"cap_setuid", "cap_setgid"});
    auto t = with_caps(caps, e2e::vmatrace_bin() + " trace -v --faults=off -- sh " + dir.file("run.sh"));
    EXPECT_EQ(t.status, 0) << e2e::describe(t);
    const auto children = e2e::split_lines(e2e::read_file(pids).value_or(""));
    ASSERT_EQ(children.size(), 3u) << "the children did not run\n" << e2e::describe(t);
    for (const auto& child : children) {
      const std::regex as_setpriv("(^|\n) *\\S+ +" + child + "/\\d+ setpriv "),
          as_true("(^|\n) *\\S+ +" + child + "/\\d+ true ");
      EXPECT_TRUE(std::regex_search(t.out, as_setpriv)) << "child " << child << " before it changed its user\n"
                                                        << e2e::describe(t);
      if (ptrace) {
        EXPECT_TRUE(std::regex_search(t.out, as_true)) << "child " << child << "\n" << e2e::describe(t);
      } else {
        EXPECT_FALSE(std::regex_search(t.out, as_true))
            << "events of child " << child << " as uid 65534, which the invoking user may not ptrace\n"
            << e2e::describe(t);
        // Named: since credential changes are judged at their syscall's
        // exit, at its setresuid ("stopped following pid N (setpriv): its
        // setresuid gave it uid 65534"), before the exec would be.
        EXPECT_TRUE(t.err.find("not following pid " + child + ": it exited before") != std::string::npos ||
                    t.err.find("stopped following pid " + child + " (setpriv): its setresuid") != std::string::npos)
            << e2e::describe(t);
      }
    }
  }
}

// A set*id without an exec: a followed process that changes its
// credentials while it runs on is judged again in the kernel at the exit of
// that syscall, and nothing of it is traced after it. The workload's three
// threads each map 21 pages, change (setresuid: glibc's setresgid, then
// setresuid, each changing every thread, so the first thread's setresgid
// ends it; thread: one worker's raw setresuid changes that thread only),
// then each map 23 pages. Without CAP_SYS_PTRACE the 23-page maps are absent and one
// line says why; with it they are all there (the check can fail).
// Both ways the exits are judged: a tracepoint program on each credential
// syscall, and the raw sys_exit program where tracefs is unusable.
TEST(Privilege, SetIdWithoutExecEndsTheTraceThere) {
  for (std::string syscalls : {"tracepoint", "raw_tracepoint"}) {
    for (std::string mode : {"setresuid", "thread"}) {
      for (bool ptrace : {false, true}) {
        SCOPED_TRACE(syscalls + ", " + mode + (ptrace ? ", with CAP_SYS_PTRACE" : ", without CAP_SYS_PTRACE"));
        auto caps = plus(kTracing, {"cap_setuid", "cap_setgid"});
        if (ptrace) caps.push_back("cap_sys_ptrace");
        auto t = with_caps(caps, e2e::vmatrace_bin() + " trace --faults=off --attach syscalls=" + syscalls + " -- " +
                                     e2e::workload("credchange") + " " + mode);
        EXPECT_NE(t.err.find("syscalls=" + syscalls + " "), std::string::npos) << e2e::describe(t);
        EXPECT_EQ(t.status, 0) << e2e::describe(t);
        EXPECT_NE(t.err.find("done"), std::string::npos) << "the workload did not finish\n" << e2e::describe(t);
        const auto lines = e2e::split_lines(t.out);
        auto count = [&](const std::string& what) {
          return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
            return l.find(" credchange " + what) != std::string::npos;
          });
        };
        EXPECT_EQ(count("mmap(NULL, 86016 "), 3) << "the maps before the change\n" << e2e::describe(t);
        if (ptrace) {
          EXPECT_EQ(count("mmap(NULL, 94208 "), 3) << e2e::describe(t);
          EXPECT_EQ(t.err.find("stopped following"), std::string::npos) << e2e::describe(t);
          continue;
        }
        EXPECT_EQ(count("mmap(NULL, 94208 "), 0) << "events after the change of credentials\n" << e2e::describe(t);
        const std::regex said(mode == "thread"
                                  ? "vmatrace: stopped following pid \\d+ \\(credchange\\): its setresuid in "
                                    "thread \\d+ gave it uid 65534 \\(effective 65534\\)"
                                  : "vmatrace: stopped following pid \\d+ \\(credchange\\): its setresgid( in "
                                    "thread \\d+)? gave it gid 65534 \\(effective 65534\\)");
        EXPECT_TRUE(std::regex_search(t.err, said)) << e2e::describe(t);
        // One line, said once (each thread's change comes to its exit; the first ends it).
        EXPECT_EQ(t.err.find("stopped following"), t.err.rfind("stopped following")) << e2e::describe(t);
      }
    }
  }
}

// The same for prctl(PR_SET_DUMPABLE, 0) of a process of the tracer's own
// user: undumpable, it may no longer be ptraced without CAP_SYS_PTRACE.
TEST(Privilege, UndumpableWithoutExecEndsTheTraceThere) {
  for (bool ptrace : {false, true}) {
    SCOPED_TRACE(ptrace ? "with CAP_SYS_PTRACE" : "without CAP_SYS_PTRACE");
    auto caps = ptrace ? plus(kTracing, {"cap_sys_ptrace"}) : kTracing;
    auto t =
        with_caps(caps, e2e::vmatrace_bin() + " trace --faults=off -- " + e2e::workload("credchange") + " dumpable");
    EXPECT_EQ(t.status, 0) << e2e::describe(t);
    EXPECT_NE(t.err.find("done"), std::string::npos) << "the workload did not finish\n" << e2e::describe(t);
    const auto lines = e2e::split_lines(t.out);
    auto count = [&](const std::string& what) {
      return std::count_if(lines.begin(), lines.end(),
                           [&](const std::string& l) { return l.find(" credchange " + what) != std::string::npos; });
    };
    EXPECT_EQ(count("mmap(NULL, 86016 "), 3) << e2e::describe(t);
    EXPECT_EQ(count("mmap(NULL, 94208 "), ptrace ? 3 : 0) << e2e::describe(t);
    if (ptrace)
      EXPECT_EQ(t.err.find("stopped following"), std::string::npos) << e2e::describe(t);
    else
      EXPECT_TRUE(std::regex_search(
          t.err, std::regex("vmatrace: stopped following pid \\d+ \\(credchange\\): its prctl made it undumpable")))
          << e2e::describe(t);
  }
}

// A real user (uid 65534) holding CAP_BPF, CAP_PERFMON and
// CAP_DAC_READ_SEARCH as ambient capabilities, not root with capabilities
// dropped. This kernel has no Yama (no /proc/sys/kernel/yama), so what is
// tested is the ptrace check under it: a process of another user is
// refused with one line naming it; the user's own process is traced, and
// the layout recorded at the attach equals its /proc/PID/maps (a sleeping
// process: it does not change).
TEST(Privilege, NonRootUserTracesOnlyItsOwnProcesses) {
  const std::vector<std::string> as_user = {"setpriv",
                                            "--reuid=65534",
                                            "--regid=65534",
                                            "--clear-groups",
                                            "--inh-caps=+bpf,+perfmon,+dac_read_search",
                                            "--ambient-caps=+bpf,+perfmon,+dac_read_search"};
  auto vmatrace_as_user = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = as_user;
    argv.insert(argv.end(), {"timeout", "--preserve-status", "-s", "INT", "3", e2e::vmatrace_bin()});
    argv.insert(argv.end(), args.begin(), args.end());
    return e2e::run_command(argv);
  };
  // Another user's (root's), running: it exists, and is not the user's.
  e2e::Subprocess roots({"sleep", "60"});
  const std::string root_pid = std::to_string(roots.pid());
  for (int i = 0; i < 500 && e2e::process_state(roots.pid()) != 'S'; i++) ::usleep(10'000);
  ASSERT_EQ(::kill(roots.pid(), 0), 0) << "the other user's process is not there";
  auto refused = vmatrace_as_user({"trace", "--faults=off", "-p", root_pid});
  EXPECT_NE(refused.status, 0) << e2e::describe(refused);
  EXPECT_NE(refused.status, 128 + SIGINT) << "it traced until interrupted\n" << e2e::describe(refused);
  EXPECT_EQ(e2e::count_lines(refused.err), 1u) << e2e::describe(refused);
  EXPECT_NE(refused.err.find("not allowed to trace pid " + root_pid + ": it belongs to uid 0, you are uid 65534"),
            std::string::npos)
      << e2e::describe(refused);
  EXPECT_EQ(::kill(roots.pid(), 0), 0) << "the refused process was harmed";

  // The user's own: traced; its layout at the attach is /proc's.
  e2e::Subprocess own({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"});
  const std::string own_pid = std::to_string(own.pid());
  for (int i = 0; i < 500 && e2e::process_state(own.pid()) != 'S'; i++) ::usleep(10'000);
  ::usleep(100'000);  // sleep has exec'd and mapped what it maps
  e2e::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0) << std::strerror(errno);
  const std::string rec = dir.file("own.vmat");
  auto allowed = vmatrace_as_user({"record", "--faults=off", "-o", rec, "-p", own_pid});
  EXPECT_EQ(allowed.status, 128 + SIGINT) << "traced until interrupted\n" << e2e::describe(allowed);
  EXPECT_EQ(allowed.err.find("not allowed"), std::string::npos) << e2e::describe(allowed);
  const auto maps = e2e::read_file("/proc/" + own_pid + "/maps");
  ASSERT_TRUE(maps) << "the user's process ended";
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--maps", "--pid", own_pid}));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  // The replayed events, then "# maps of PID (sleep)" and the layout at the end.
  const size_t at = replay.out.find("# maps of " + own_pid + " ");
  ASSERT_NE(at, std::string::npos) << e2e::describe(replay);
  const std::string body = replay.out.substr(replay.out.find('\n', at) + 1);
  EXPECT_EQ(body, *maps) << e2e::diff_lines(*maps, body, "/proc/" + own_pid + "/maps", "replay --maps");
}

}  // namespace
