// The attach planner is a pure function of the probed features: each case
// is a fake kernel.
#include <gtest/gtest.h>

#include "support/kernels.h"
#include "trace/features.h"
#include "util/errors.h"

using namespace vmatrace;
using namespace vmatrace::test;

TEST(Planner, ModernKernelUsesTracepointsAndKernelWalk) {
  auto p = plan_attach(kernel_618());
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kTracepoint);
  EXPECT_EQ(p.mode(Family::kFaults), AttachMode::kRawTracepoint);
  EXPECT_EQ(p.mode(Family::kProcess), AttachMode::kRawTracepoint);
  EXPECT_EQ(p.mode(Family::kExecLayout), AttachMode::kKfuncIter);
}

TEST(Planner, NoTracefsFallsBackToRawSyscallsAndSaysWhy) {
  Features f = kernel_618();
  f.tracefs = false;
  f.syscall_tracepoints = false;
  f.tracefs_error = "mounting tracefs on /sys/kernel/tracing failed: Permission denied";
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kRawTracepoint);
  const auto& rej = p.families.at(Family::kSyscalls).rejected;
  ASSERT_EQ(rej.size(), 3u);  // fentry, kprobe, tracepoint
  EXPECT_NE(rej[2].find("tracepoint: mounting tracefs"), std::string::npos) << rej[2];
  EXPECT_NE(rej[2].find("Permission denied"), std::string::npos);
}

TEST(Planner, OldKernelReadsExecLayoutFromProc) {
  auto p = plan_attach(kernel_61());
  EXPECT_EQ(p.mode(Family::kExecLayout), AttachMode::kProcfs);
  EXPECT_FALSE(p.families.at(Family::kExecLayout).rejected.empty());
}

TEST(Planner, NoBtfIsAUserError) {
  Features f = kernel_618();
  f.btf = false;
  EXPECT_THROW(plan_attach(f), UserError);
}

TEST(Planner, ForcedModeIsHonoured) {
  auto p = plan_attach(kernel_618(), {{Family::kSyscalls, AttachMode::kRawTracepoint}});
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kRawTracepoint);
  auto q = plan_attach(kernel_618(), {{Family::kExecLayout, AttachMode::kProcfs}});
  EXPECT_EQ(q.mode(Family::kExecLayout), AttachMode::kProcfs);
}

TEST(Planner, ForcedModeTheKernelLacksIsAnErrorNamingWhy) {
  try {
    plan_attach(kernel_61(), {{Family::kExecLayout, AttachMode::kKfuncIter}});
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("6.7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plan_attach(kernel_618(), {{Family::kFaults, AttachMode::kKprobe}}), UserError);
}

TEST(Planner, FamiliesCanBeTurnedOff) {
  auto p = plan_attach(kernel_618(), {{Family::kFaults, AttachMode::kNone}});
  EXPECT_EQ(p.mode(Family::kFaults), AttachMode::kNone);
}

TEST(Planner, AttachModeNamesRoundTrip) {
  for (auto m : {AttachMode::kFentry, AttachMode::kKprobe, AttachMode::kTracepoint, AttachMode::kRawTracepoint,
                 AttachMode::kKfuncIter, AttachMode::kProcfs})
    EXPECT_EQ(parse_attach_mode(attach_mode_name(m)), m);
  EXPECT_FALSE(parse_attach_mode("bogus"));
}

TEST(Planner, FentryKernelUsesFexitForSyscalls) {
  auto p = plan_attach(kernel_61());
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kFentry);
  EXPECT_TRUE(p.families.at(Family::kSyscalls).rejected.empty());
}

TEST(Planner, KprobeKernelWithoutTrampolinesUsesKprobesAndSaysWhyNotFentry) {
  auto p = plan_attach(kernel_kprobes_only());
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kKprobe);
  const auto& rej = p.families.at(Family::kSyscalls).rejected;
  ASSERT_EQ(rej.size(), 1u);
  EXPECT_EQ(rej[0], "fentry: attach to __x64_sys_brk refused (ENOTSUPP)");
}

TEST(Planner, ThisMachineRejectsFentryAndKprobeWithReasons) {
  auto p = plan_attach(kernel_618());
  const auto& rej = p.families.at(Family::kSyscalls).rejected;
  ASSERT_EQ(rej.size(), 2u);
  EXPECT_EQ(rej[0], "fentry: load refused (EPERM)");
  EXPECT_EQ(rej[1], "kprobe: this kernel has no kprobes (CONFIG_KPROBES is off)");
}

TEST(Planner, KprobeTargetMissingFromKallsymsIsRejected) {
  Features f = kernel_kprobes_only();
  f.kprobe_missing = {"__x64_sys_mremap"};
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kTracepoint);
  EXPECT_TRUE(mentions(p.families.at(Family::kSyscalls).rejected, "__x64_sys_mremap is not in /proc/kallsyms"));
}

TEST(Planner, EveryLesserSyscallsModeCanBeForcedOnAFentryKernel) {
  for (auto m : {AttachMode::kFentry, AttachMode::kKprobe, AttachMode::kTracepoint, AttachMode::kRawTracepoint}) {
    auto p = plan_attach(kernel_61(), {{Family::kSyscalls, m}});
    EXPECT_EQ(p.mode(Family::kSyscalls), m) << attach_mode_name(m);
  }
  auto p = plan_attach(kernel_61(), {{Family::kSyscalls, AttachMode::kKprobe}});
  EXPECT_TRUE(mentions(p.families.at(Family::kSyscalls).rejected, "fentry: overridden by --attach"));
}

TEST(Planner, ForcingKprobeWithoutKprobesNamesWhy) {
  EXPECT_EQ(user_error(kernel_618(), {{Family::kSyscalls, AttachMode::kKprobe}}),
            "cannot force kprobe for syscalls: this kernel has no kprobes (CONFIG_KPROBES is off)");
  EXPECT_EQ(user_error(kernel_618(), {{Family::kSyscalls, AttachMode::kFentry}}),
            "cannot force fentry for syscalls: the fentry probe failed: load refused (EPERM)");
  EXPECT_NE(user_error(kernel_61(), {{Family::kSyscalls, AttachMode::kKfuncIter}}).find("cannot force"),
            std::string::npos);
}

TEST(Planner, EnvironmentForcesModesAndAttachWins) {
  Features f = kernel_61();
  f.env_forced = {{Family::kSyscalls, AttachMode::kKprobe}};
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kKprobe);
  EXPECT_TRUE(mentions(p.families.at(Family::kSyscalls).rejected, "fentry: overridden by VMATRACE_ATTACH"));
  auto q = plan_attach(f, {{Family::kSyscalls, AttachMode::kTracepoint}});
  EXPECT_EQ(q.mode(Family::kSyscalls), AttachMode::kTracepoint);

  Features host = kernel_618();
  host.env_forced = {{Family::kSyscalls, AttachMode::kKprobe}};
  EXPECT_NE(user_error(host, {}).find("(forced by VMATRACE_ATTACH)"), std::string::npos);
}

TEST(Planner, AttachSpecParsing) {
  EXPECT_EQ(parse_attach_spec("syscalls=kprobe"), (ForcedModes{{Family::kSyscalls, AttachMode::kKprobe}}));
  EXPECT_EQ(parse_attach_spec("fentry"), (ForcedModes{{Family::kSyscalls, AttachMode::kFentry}}));
  EXPECT_EQ(parse_attach_spec("syscalls=raw_tp,exec_layout=procfs"),
            (ForcedModes{{Family::kSyscalls, AttachMode::kRawTracepoint}, {Family::kExecLayout, AttachMode::kProcfs}}));
  EXPECT_THROW(parse_attach_spec("syscalls=bogus"), UserError);
  EXPECT_THROW(parse_attach_spec("nosuchfamily=kprobe"), UserError);
}

TEST(Planner, OptionalSyscallsTheChosenModeLacksAreLeftOutNotFatal) {
  // A kernel without CONFIG_SYSVIPC: no __x64_sys_shmat/shmdt in BTF or
  // kallsyms, no syscalls:sys_enter_shm* tracepoints. Every mode stays
  // available; the plan names what its chosen mode leaves untraced.
  Features f = kernel_61();
  for (auto m : {AttachMode::kFentry, AttachMode::kKprobe, AttachMode::kTracepoint})
    f.syscalls_absent[m] = {"shmat", "shmdt"};
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kSyscalls), AttachMode::kFentry);
  EXPECT_EQ(p.families.at(Family::kSyscalls).absent, (std::vector<std::string>{"shmat", "shmdt"}));
  EXPECT_TRUE(p.families.at(Family::kSyscalls).rejected.empty());
  // Forced to a mode: that mode's list. raw_syscalls filters by number: nothing absent.
  auto k = plan_attach(f, {{Family::kSyscalls, AttachMode::kKprobe}});
  EXPECT_EQ(k.families.at(Family::kSyscalls).absent.size(), 2u);
  auto r = plan_attach(f, {{Family::kSyscalls, AttachMode::kRawTracepoint}});
  EXPECT_TRUE(r.families.at(Family::kSyscalls).absent.empty());
  // Only what the chosen mode lacks counts.
  Features g = kernel_618();
  g.syscalls_absent[AttachMode::kFentry] = {"mlock2"};
  EXPECT_TRUE(plan_attach(g).families.at(Family::kSyscalls).absent.empty());
}
