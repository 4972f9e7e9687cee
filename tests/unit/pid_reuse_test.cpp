// A pid reused within one stream: the Processor must give the second
// process its own state (its parent's layout at fork), never the first
// holder's, whether or not the first holder's exit record arrived.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "core/proc_maps.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "core/vm_flags.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

// Applies one fixed-size record.
template <typename T>
void apply_record(Processor& p, const T& v) {
  p.apply(decode(bytes_of(v)), nullptr);
}

void seed(Processor& p, uint32_t pid, uint64_t ts, std::vector<Vma> vmas) {
  p.apply(decode(layout_rec(pid, ts, std::move(vmas), LayoutReason::kAttach, "parent")), nullptr);
}

void fork_child(Processor& p, uint32_t parent, uint32_t child, uint64_t ts) {
  vmat_fork_event f{};
  f.hdr = make_header(VMAT_EV_FORK, ts, parent, parent, "parent");
  f.child_pid = child;
  f.child_tid = child;
  f.flags = VMAT_FORK_TRACED;
  apply_record(p, f);
}

void mmap_anon(Processor& p, uint32_t pid, uint64_t ts, uint64_t start, uint64_t end) {
  apply_record(p, mmap_event(pid, ts, start, end - start, kinfo(start, end), "child"));
}

void exit_group(Processor& p, uint32_t pid, uint64_t ts) {
  vmat_exit_event x{};
  x.hdr = make_header(VMAT_EV_EXIT, ts, pid, pid, "child");
  x.flags = VMAT_EXIT_GROUP;
  apply_record(p, x);
}

}  // namespace

TEST(ProcessorPidReuse, SecondHolderStartsFromItsParentsLayout) {
  Processor p;
  seed(p, 10, 100, {anon(0x10000, 0x20000)});
  fork_child(p, 10, 11, 200);
  mmap_anon(p, 11, 210, 0x50000, 0x52000);  // only the first holder maps this
  exit_group(p, 11, 220);
  ASSERT_EQ(p.process(11), nullptr);
  fork_child(p, 10, 11, 300);
  mmap_anon(p, 11, 310, 0x70000, 0x71000);
  const ProcessState* second = p.process(11);
  ASSERT_NE(second, nullptr);
  // The parent's VMA and its own mmap; nothing at 0x50000.
  auto vmas = second->layout.vmas();
  ASSERT_EQ(vmas.size(), 2u) << format_proc_maps(second->layout);
  EXPECT_EQ(vmas[0].start, 0x10000u);
  EXPECT_EQ(vmas[0].end, 0x20000u);
  EXPECT_EQ(vmas[1].start, 0x70000u);
  EXPECT_EQ(vmas[1].end, 0x71000u);
  EXPECT_EQ(second->layout.find(0x50000), nullptr);
  EXPECT_FALSE(second->exited);
  EXPECT_EQ(second->events, 1u);  // its own mmap; the fork is the parent's record
  ASSERT_EQ(p.ended().size(), 1u);
  EXPECT_EQ(p.ended()[0].pid, 11u);
}

// The first holder's exit record was lost (ring buffer full): the fork that
// hands its pid to a new process still replaces the stale state.
TEST(ProcessorPidReuse, ForkReplacesStateWhoseExitWasLost) {
  Processor p;
  seed(p, 10, 100, {anon(0x10000, 0x20000)});
  fork_child(p, 10, 11, 200);
  mmap_anon(p, 11, 210, 0x50000, 0x52000);
  fork_child(p, 10, 11, 300);  // no exit record in between
  const ProcessState* second = p.process(11);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(format_proc_maps(second->layout), format_proc_maps(p.process(10)->layout));
  EXPECT_EQ(second->events, 0u);
}
