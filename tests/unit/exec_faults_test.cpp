// Faults the kernel takes while an exec builds the new image
// (VMAT_FAULT_IN_EXEC): the Processor holds those of the new address space
// until the layout after the exec is known, and hands them to the sinks
// then, found in that layout (core/processor.h).
#include <gtest/gtest.h>

#include <vector>

#include "core/processor.h"
#include "support/records.h"

namespace vmatrace {
namespace {

using test::records::anon;
using test::records::bytes_of;
using test::records::decode;
using test::records::layout_rec;

constexpr uint32_t kPid = 7;
constexpr uint64_t kOld = 0x10000000, kNew = 0x7ffd0000;

struct Seen {
  uint32_t type;
  uint64_t addr;
  bool applied;
  std::optional<uint64_t> vma_start;
};

struct Collect : RecordSink {
  std::vector<Seen> seen;
  void on_record(const DecodedRecord& rec, const Applied& a, const ProcessState*) override {
    seen.push_back({rec.type, rec.type == VMAT_EV_FAULT ? rec.fault.addr : 0, a.applied,
                    a.fault_vma ? std::optional<uint64_t>(a.fault_vma->start) : std::nullopt});
  }
};

DecodedRecord fault(uint64_t ts, uint64_t addr, bool write,
                    uint32_t flags = VMAT_FAULT_IN_EXEC | VMAT_FAULT_KERNEL_MODE) {
  vmat_fault_event e{};
  e.hdr = make_header(VMAT_EV_FAULT, ts, kPid, kPid, "sh");
  e.addr = addr;
  e.ip = 0xffffffff81000000ull;
  e.error_code = write ? 2 : 0;
  e.flags = flags;
  return decode(bytes_of(e));
}

DecodedRecord exec_rec(uint64_t ts) {
  vmat_exec_event e{};
  e.hdr = make_header(VMAT_EV_EXEC, ts, kPid, kPid, "env");
  e.old_tid = kPid;
  e.filename_len = 9;
  return decode(bytes_of(e, std::string_view("/bin/env\0", 9)));
}

DecodedRecord syscall_rec(uint64_t ts) {
  return decode(bytes_of(test::records::mmap_event(kPid, ts, kOld + 0x100000, 0x1000)));
}

std::vector<Seen> faults_of(const Collect& c) {
  std::vector<Seen> f;
  for (const auto& s : c.seen)
    if (s.type == VMAT_EV_FAULT) f.push_back(s);
  return f;
}

TEST(ExecFaults, NewImageFaultsWaitForTheLayoutAfterTheExec) {
  Processor p;
  Collect c;
  p.apply(decode(layout_rec(kPid, 100, {anon(kOld, kOld + 0x4000)})), &c);
  // copy_strings() reading argv from the old layout: applied at once.
  p.apply(fault(200, kOld + 0x1000, /*write=*/false), &c);
  ASSERT_EQ(faults_of(c).size(), 1u);
  EXPECT_EQ(faults_of(c)[0].vma_start, kOld);
  // create_elf_tables() writing the new stack: outside the old layout, held.
  p.apply(fault(300, kNew + 0x2000, /*write=*/true), &c);
  p.apply(fault(310, kNew + 0x3000, /*write=*/true), &c);
  EXPECT_EQ(faults_of(c).size(), 1u) << "held until the new layout is known";
  p.apply(exec_rec(400), &c);
  EXPECT_EQ(faults_of(c).size(), 1u) << "the exec record alone does not tell the new layout";
  p.apply(decode(layout_rec(kPid, 410, {anon(kNew, kNew + 0x10000)}, LayoutReason::kExec)), &c);
  auto f = faults_of(c);
  ASSERT_EQ(f.size(), 3u);
  for (size_t i = 1; i < 3; i++) {
    EXPECT_TRUE(f[i].applied);
    EXPECT_EQ(f[i].vma_start, kNew) << "found in the new layout";
  }
  EXPECT_EQ(c.seen.back().type, VMAT_EV_FAULT) << "released right after the layout record";
}

TEST(ExecFaults, FaultsWithoutTheFlagAreNeverHeld) {
  Processor p;
  Collect c;
  p.apply(decode(layout_rec(kPid, 100, {anon(kOld, kOld + 0x4000)})), &c);
  p.apply(fault(300, kNew, /*write=*/true, VMAT_FAULT_KERNEL_MODE), &c);
  ASSERT_EQ(faults_of(c).size(), 1u);
  EXPECT_FALSE(faults_of(c)[0].vma_start);
}

TEST(ExecFaults, AFailedExecGivesThemBackToTheOldLayout) {
  Processor p;
  Collect c;
  p.apply(decode(layout_rec(kPid, 100, {anon(kOld, kOld + 0x4000)})), &c);
  p.apply(fault(300, kOld + 0x2000, /*write=*/true), &c);  // a write in execve: held
  EXPECT_EQ(faults_of(c).size(), 0u);
  p.apply(syscall_rec(500), &c);  // the process goes on: no exec happened
  auto f = faults_of(c);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].vma_start, kOld);
}

TEST(ExecFaults, HeldFaultsOfAProcessThatEndsAreStillReported) {
  Processor p;
  Collect c;
  p.apply(decode(layout_rec(kPid, 100, {anon(kOld, kOld + 0x4000)})), &c);
  p.apply(fault(300, kNew, /*write=*/true), &c);
  p.apply(exec_rec(400), &c);
  p.finish(&c);
  auto f = faults_of(c);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_FALSE(f[0].applied);
}

}  // namespace
}  // namespace vmatrace
