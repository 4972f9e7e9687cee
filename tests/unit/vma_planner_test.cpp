// The vma family's modes (kernel-view sources of VMA changes), best first:
// fentry, kprobe, maple_tree (raw tracepoint), inference ("none").
#include <gtest/gtest.h>

#include "support/kernels.h"
#include "trace/features.h"
#include "util/errors.h"

using namespace vmatrace;
using namespace vmatrace::test;

TEST(VmaPlanner, HostUsesMapleTreeAndSaysWhyNotBetter) {
  auto p = plan_attach(host_618());
  EXPECT_EQ(p.mode(Family::kVma), AttachMode::kRawTracepoint);
  const auto& rej = p.families.at(Family::kVma).rejected;
  EXPECT_TRUE(mentions(rej, "fentry: load refused (EPERM)"));
  EXPECT_TRUE(mentions(rej, "kprobe: this kernel has no kprobes"));
}

TEST(VmaPlanner, Vm61PrefersFentryThenKprobe) {
  EXPECT_EQ(plan_attach(vm_61()).mode(Family::kVma), AttachMode::kFentry);
  Features f = vm_61();
  f.fentry = false;
  f.fentry_error = "attach refused";
  EXPECT_EQ(plan_attach(f).mode(Family::kVma), AttachMode::kKprobe);
}

TEST(VmaPlanner, StoreFunctionThatCannotBeHookedRejectsItsModes) {
  Features f = vm_61();
  f.vma_fentry_error = "attach to perf_event_mmap refused (EBUSY)";
  f.vma_kprobe_missing = {"perf_event_mmap"};
  auto p = plan_attach(f);
  Features g = vm_61();
  g.vma_fentry_error = "attach to vma_mas_store refused (EBUSY)";
  g.vma_kprobe_error = "kprobe on vma_mas_store refused (EINVAL)";
  auto q = plan_attach(g);
  EXPECT_EQ(q.mode(Family::kVma), AttachMode::kRawTracepoint);
  EXPECT_TRUE(mentions(q.families.at(Family::kVma).rejected, "kprobe: kprobe on vma_mas_store refused (EINVAL)"));
  EXPECT_EQ(p.mode(Family::kVma), AttachMode::kRawTracepoint);
  EXPECT_TRUE(mentions(p.families.at(Family::kVma).rejected, "fentry: attach to perf_event_mmap refused (EBUSY)"));
  EXPECT_TRUE(mentions(p.families.at(Family::kVma).rejected, "perf_event_mmap is not in /proc/kallsyms"));
}

// Kernels after 6.1 inline their VMA-tree stores: the rejection says so
// rather than reading like a broken kernel.
TEST(VmaPlanner, KernelWithoutVmaMasStoreSaysItInlinesItsStores) {
  Features f = vm_61();
  f.vma_fentry_error = "vma_mas_store not in vmlinux BTF";
  f.vma_kprobe_missing = {"vma_mas_store"};
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kVma), AttachMode::kRawTracepoint);
  EXPECT_TRUE(mentions(p.families.at(Family::kVma).rejected, "fentry: vma_mas_store not in vmlinux BTF (6.1's"));
  EXPECT_TRUE(mentions(p.families.at(Family::kVma).rejected, "later kernels inline theirs"));
}

TEST(VmaPlanner, NoKernelSourceFallsBackToInference) {
  Features f = host_618();
  f.maple_tree_tp = false;
  auto p = plan_attach(f);
  EXPECT_EQ(p.mode(Family::kVma), AttachMode::kNone);
  EXPECT_TRUE(mentions(p.families.at(Family::kVma).rejected, "maple_tree:ma_write"));
}

TEST(VmaPlanner, ForcingModesAndTheirNames) {
  auto forced = parse_attach_spec("vma=none");
  EXPECT_EQ(plan_attach(host_618(), forced).mode(Family::kVma), AttachMode::kNone);
  EXPECT_EQ(parse_attach_spec("inference").at(Family::kVma), AttachMode::kNone);
  EXPECT_EQ(parse_attach_spec("maple_tree").at(Family::kVma), AttachMode::kRawTracepoint);
  EXPECT_EQ(parse_attach_spec("vma=kprobe").at(Family::kVma), AttachMode::kKprobe);
  EXPECT_THROW(plan_attach(host_618(), parse_attach_spec("vma=kprobe")), UserError);
  EXPECT_THROW(plan_attach(host_618(), parse_attach_spec("vma=kernel_iterator")), UserError);
  EXPECT_THROW(parse_attach_spec("none"), UserError);
  // VMATRACE_ATTACH turns it off the same way.
  Features f = host_618();
  f.env_forced = parse_attach_spec("vma=inference");
  EXPECT_EQ(plan_attach(f).mode(Family::kVma), AttachMode::kNone);
}
