// Threads of one process change its VMA tree one at a time (mmap_lock), but
// each syscall's record is made at its exit, after the lock is released: a
// thread preempted in between has its record come after a sibling's that
// took the lock next. The model must still end where the kernel did.
#include <gtest/gtest.h>

#include "core/processor.h"
#include "core/records.h"
#include "core/vm_flags.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

constexpr uint32_t kPid = 10;

vmat_syscall_event syscall(uint32_t tid, uint32_t sys, uint64_t enter, uint64_t exit, int64_t ret) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, exit, kPid, tid, "t");
  e.sys = sys;
  e.enter_ts = enter;
  e.ret = ret;
  return e;
}

std::vector<std::byte> munmap_rec(uint32_t tid, uint64_t enter, uint64_t exit, uint64_t addr, uint64_t len) {
  auto e = syscall(tid, VMAT_SYS_MUNMAP, enter, exit, 0);
  e.args[0] = addr;
  e.args[1] = len;
  return bytes_of(e);
}

// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = addr, no VMA in the record.
std::vector<std::byte> mmap_rec(uint32_t tid, uint64_t enter, uint64_t exit, uint64_t addr, uint64_t len,
                                uint64_t flags = 0x22) {
  auto e = mmap_event(kPid, exit, addr, len);
  e.hdr.tid = tid;
  e.enter_ts = enter;
  e.args[3] = flags;
  return bytes_of(e);
}

std::vector<std::byte> mremap_rec(uint32_t tid, uint64_t enter, uint64_t exit, uint64_t old_addr, uint64_t old_len,
                                  uint64_t new_len, uint64_t ret) {
  auto e = syscall(tid, VMAT_SYS_MREMAP, enter, exit, static_cast<int64_t>(ret));
  e.args[0] = old_addr;
  e.args[1] = old_len;
  e.args[2] = new_len;
  e.args[3] = 1;  // MREMAP_MAYMOVE
  return bytes_of(e);
}

std::string maps_of(const Processor& p) {
  std::string out;
  for (const auto& v : p.process(kPid)->layout.vmas())
    out += std::to_string(v.start) + "-" + std::to_string(v.end) + " " + v.perms() + "\n";
  return out;
}

// vma_mode: the vma family's source ("off": the model infers merges alone).
void seed(Processor& p, std::vector<Vma> vmas, const std::string& vma_mode = "raw_tracepoint") {
  p.apply(decode(encode_note(make_header(VMAT_REC_NOTE, 1, 0, 0, "vmatrace"), {"attach.vma", vma_mode})), nullptr);
  p.apply(decode(layout_rec(kPid, 2, std::move(vmas))), nullptr);
}

}  // namespace

// Thread 12 munmaps its 14 pages [0x20000, 0x2e000) and is preempted after
// releasing mmap_lock, before its syscall exit; thread 11 then maps 14 pages
// and the kernel puts them where the munmap made room. Thread 11's record
// comes first: the model still has the old VMA there. Then the munmap's
// record: it must not unmap thread 11's new VMA.
TEST(ProcessorThreads, MunmapRecordedAfterASiblingsMmapIntoItsRange) {
  Processor p;
  seed(p, {anon(0x10000, 0x11000, VM_READ | kMay), anon(0x20000, 0x2e000)});
  p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0xe000)), nullptr);
  p.apply(decode(munmap_rec(12, 90, 120, 0x20000, 0xe000)), nullptr);
  const auto& l = p.process(kPid)->layout;
  ASSERT_NE(l.find(0x20000), nullptr) << maps_of(p);
  EXPECT_EQ(l.find(0x20000)->start, 0x20000u);
  EXPECT_EQ(l.find(0x20000)->end, 0x2e000u);
  EXPECT_EQ(l.vmas().size(), 2u) << maps_of(p);
  EXPECT_EQ(p.stats().late_clears, 1u);
}

// The new mapping takes part of the freed range and merges with what is
// left of the old VMA in the model; the late munmap takes that part only.
TEST(ProcessorThreads, LateMunmapLeavesTheSiblingsPartOfAMergedVma) {
  Processor p;
  seed(p, {anon(0x20000, 0x28000)});
  p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x3000)), nullptr);
  p.apply(decode(munmap_rec(12, 90, 120, 0x20000, 0x8000)), nullptr);
  const auto& l = p.process(kPid)->layout;
  ASSERT_EQ(l.vmas().size(), 1u) << maps_of(p);
  EXPECT_EQ(l.vmas()[0].start, 0x20000u);
  EXPECT_EQ(l.vmas()[0].end, 0x23000u);
}

// The new mapping merged with an older neighbour below the freed range: the
// late munmap leaves that one VMA whole.
TEST(ProcessorThreads, LateMunmapKeepsTheMergeAcrossItsEdge) {
  Processor p;
  seed(p, {anon(0x20000, 0x28000, VM_READ | kMay)}, "off");
  p.apply(decode(mmap_rec(11, 50, 60, 0x1c000, 0x4000)), nullptr);  // the neighbour, mapped as the next one is
  p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x8000)), nullptr);
  ASSERT_EQ(p.process(kPid)->layout.vmas().size(), 1u) << "the model merged the new mapping with its neighbour";
  p.apply(decode(munmap_rec(12, 90, 120, 0x20000, 0x8000)), nullptr);
  const auto& l = p.process(kPid)->layout;
  ASSERT_EQ(l.vmas().size(), 1u) << maps_of(p);
  EXPECT_EQ(l.vmas()[0].start, 0x1c000u);
  EXPECT_EQ(l.vmas()[0].end, 0x28000u);
  EXPECT_TRUE(l.vmas()[0].flags & VM_WRITE);
}

// A mremap that moved the old VMA away, recorded after the sibling's mmap
// into the range it left: the moved VMA keeps its whole size, the new one stays.
TEST(ProcessorThreads, LateMremapMoveOutOfARangeASiblingMappedAgain) {
  Processor p;
  seed(p, {anon(0x20000, 0x24000)});
  p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x2000)), nullptr);
  p.apply(decode(mremap_rec(12, 90, 120, 0x20000, 0x4000, 0x6000, 0x40000)), nullptr);
  const auto& l = p.process(kPid)->layout;
  ASSERT_EQ(l.vmas().size(), 2u) << maps_of(p);
  EXPECT_EQ(l.vmas()[0].start, 0x20000u);
  EXPECT_EQ(l.vmas()[0].end, 0x22000u);
  EXPECT_EQ(l.vmas()[1].start, 0x40000u);
  EXPECT_EQ(l.vmas()[1].end, 0x46000u);
}

// In stream order as it happened (the munmap's record first), or the same
// thread, or a MAP_FIXED mapping (which replaces what is there): nothing
// is held back.
TEST(ProcessorThreads, InOrderOrFixedMappingsAreAppliedAsTheyCome) {
  {
    Processor p;
    seed(p, {anon(0x20000, 0x28000)});
    p.apply(decode(munmap_rec(12, 90, 100, 0x20000, 0x8000)), nullptr);
    p.apply(decode(mmap_rec(11, 105, 110, 0x20000, 0x8000)), nullptr);
    EXPECT_EQ(p.process(kPid)->layout.vmas().size(), 1u);
    EXPECT_EQ(p.stats().early_clears, 0u);
  }
  {
    // The sibling's MAP_FIXED replaced the VMA; the munmap after it (which
    // entered before it exited) unmaps the fixed mapping too.
    Processor p;
    seed(p, {anon(0x20000, 0x28000)});
    p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x8000, 0x32)), nullptr);
    p.apply(decode(munmap_rec(12, 90, 120, 0x20000, 0x8000)), nullptr);
    EXPECT_TRUE(p.process(kPid)->layout.empty());
    EXPECT_EQ(p.stats().late_clears, 0u);
  }
  {
    // A munmap that entered after the mapping's exit saw it: it unmaps it.
    Processor p;
    seed(p, {anon(0x20000, 0x28000)});
    p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x8000)), nullptr);
    p.apply(decode(munmap_rec(12, 115, 120, 0x20000, 0x8000)), nullptr);
    EXPECT_TRUE(p.process(kPid)->layout.empty());
    EXPECT_EQ(p.stats().late_clears, 0u);
  }
}

// A seed replaces the model the displaced pieces were cut from: every
// unmapping they waited for ended before the layout was read (its record is
// older, and skipped), so none is taken after it. Thread 11's mapping
// displaced the model's VMA; the resync reads the layout as the kernel has
// it; thread 12's later munmap (its entry unknown: it entered before its
// thread was traced) unmaps what the kernel had there then, not the piece
// of the model before the resync put back over it.
TEST(ProcessorThreads, ASeedDropsThePiecesDisplacedBeforeIt) {
  Processor p;
  seed(p, {anon(0x20000, 0x28000)});
  p.apply(decode(mmap_rec(11, 100, 110, 0x20000, 0x8000)), nullptr);
  ASSERT_EQ(p.process(kPid)->early_clears.size(), 1u);
  p.apply(decode(layout_rec(kPid, 200, {anon(0x20000, 0x28000)})), nullptr);
  EXPECT_TRUE(p.process(kPid)->early_clears.empty());
  p.apply(decode(munmap_rec(12, 0, 300, 0x20000, 0x8000)), nullptr);
  EXPECT_TRUE(p.process(kPid)->layout.empty()) << maps_of(p);
  EXPECT_EQ(p.stats().late_clears, 0u);
}
