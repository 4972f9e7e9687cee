// The attach planner is a pure function of the probed features: each case
// is a fake kernel.
#include <gtest/gtest.h>

#include "trace/errors.h"
#include "trace/features.h"

using namespace vmatrace;

namespace {

Features kernel_618() {
  Features f;
  f.btf = true;
  f.tracefs = true;
  f.syscall_tracepoints = true;
  f.task_vma_iter = true;
  return f;
}

Features kernel_61() {
  Features f = kernel_618();
  f.task_vma_iter = false;
  f.kprobes = true;
  return f;
}

}  // namespace

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
  ASSERT_EQ(p.families.at(Family::kSyscalls).rejected.size(), 1u);
  EXPECT_NE(p.families.at(Family::kSyscalls).rejected[0].find("Permission denied"), std::string::npos);
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
