// The per-syscall model rules (core/syscall_rules.h): every row of the
// syscall table has one, the result range follows the table's range column,
// and each rule's touched and cleared ranges and its operation, in the
// kernel tools/testing/vma style: after each step, start, end, flags and
// the VMA count.

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <linux/mman.h>

#include "core/layout.h"
#include "core/syscall_rules.h"
#include "core/vm_flags.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::pages;

// What the mmap rule gives without the kernel's VMA (no VM_ACCOUNT: the
// arguments alone do not say it).
constexpr uint64_t kArgsRW = VM_READ | VM_WRITE | kMay;

vmat_syscall_event call(uint32_t sys, int64_t ret, std::initializer_list<uint64_t> args) {
  vmat_syscall_event e{};
  e.sys = sys;
  e.ret = ret;
  size_t i = 0;
  for (uint64_t a : args) e.args[i++] = a;
  return e;
}

const SyscallRule& rule(uint32_t sys) {
  const SyscallRule* r = syscall_rule(sys);
  EXPECT_NE(r, nullptr) << sys;
  return *r;
}

struct Touched {
  AddrRanges spans;
  VmaChangeHints hints;
  AddrRanges cleared;
};

Touched touched(const vmat_syscall_event& e, const Layout& l) {
  Touched t;
  const SyscallRule& r = rule(e.sys);
  r.touches(e, l, t.spans, t.hints);
  r.clears(e, l, t.cleared);
  return t;
}

using Range = std::pair<uint64_t, uint64_t>;

// ---- the table ------------------------------------------------------------

TEST(SyscallRules, EveryTableRowHasARuleWithItsRangeColumn){
#define ROW(name, NAME, id, x86_64_nr, nargs, required, ret, result_range, ...) \
  {                                                                             \
    const SyscallRule* r = syscall_rule(VMAT_SYS_##NAME);                       \
    ASSERT_NE(r, nullptr) << #name;                                             \
    EXPECT_EQ(r->range, result_range) << #name;                                 \
    EXPECT_NE(r->touches, nullptr) << #name;                                    \
    EXPECT_NE(r->clears, nullptr) << #name;                                     \
  }
    VMAT_SYSCALLS(ROW)
#undef ROW
}

TEST(SyscallRules, IdsOutsideTheTableHaveNone) {
  EXPECT_EQ(syscall_rule(0), nullptr);
  EXPECT_EQ(syscall_rule(VMAT_SYS_MAX), nullptr);
  EXPECT_EQ(syscall_rule(~0u), nullptr);
}

TEST(SyscallRules, FailedMeansMinusErrno) {
  EXPECT_TRUE(syscall_failed(-1));
  EXPECT_TRUE(syscall_failed(-4095));
  EXPECT_FALSE(syscall_failed(-4096));  // an address in the top page range, not an error
  EXPECT_FALSE(syscall_failed(0));
  EXPECT_FALSE(syscall_failed(static_cast<int64_t>(pg(0))));
}

TEST(SyscallRules, ResultRangeFollowsTheColumn) {
  auto e = call(VMAT_SYS_MREMAP, static_cast<int64_t>(pg(10)), {pg(1), 2 * P, 3 * P});
  e.start_brk = pg(20), e.brk = pg(22) + 5;
  e.vma[0].end = pg(14);
  EXPECT_EQ(syscall_result_range(VMAT_RANGE_RET_LEN1, e), Range(pg(10), pg(12)));
  EXPECT_EQ(syscall_result_range(VMAT_RANGE_RET_LEN2, e), Range(pg(10), pg(13)));
  EXPECT_EQ(syscall_result_range(VMAT_RANGE_RET, e), Range(pg(10), pg(14)));
  EXPECT_EQ(syscall_result_range(VMAT_RANGE_ARG0_LEN1, e), Range(pg(1), pg(3)));
  EXPECT_EQ(syscall_result_range(VMAT_RANGE_BRK, e), Range(pg(20), pg(22) + 5));
  const auto none = syscall_result_range(VMAT_RANGE_NONE, e);
  EXPECT_EQ(none.first, none.second);
}

// ---- mmap -----------------------------------------------------------------

TEST(SyscallRules, MmapWithoutKernelVmaTakesFlagsFromTheArguments) {
  // ---- -> AA-- (private rw) -> AABB (shared r-x, def_flags from mlockall(MCL_FUTURE))
  Layout l;
  auto e = call(VMAT_SYS_MMAP, static_cast<int64_t>(pg(0)),
                {0, 2 * P - 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0});
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(0), pg(2)}}));
  EXPECT_TRUE(t.hints.new_range_merges);
  EXPECT_EQ(Range(t.hints.replaced_start, t.hints.replaced_end), Range(pg(0), pg(2)));
  EXPECT_TRUE(t.cleared.empty());
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MMAP).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kArgsRW);

  l.set_def_flags(VM_LOCKED);
  e = call(VMAT_SYS_MMAP, static_cast<int64_t>(pg(2)),
           {pg(2), 2 * P, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS, ~0ull, 0});
  ASSERT_TRUE(rule(VMAT_SYS_MMAP).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kArgsRW);
  // Shared anonymous memory is a shmem file from offset 0 (shmem_zero_setup()).
  EXPECT_VMA(l.find(pg(2)), 2, 4, 0u, VM_READ | VM_EXEC | kMay | VM_LOCKED | VM_SHARED | VM_MAYSHARE);
}

TEST(SyscallRules, MmapInsideTheKernelVmaTakesItsFlagsAndOffset) {
  // The kernel's VMA merged with a file mapping before it: pgoff continues it.
  Layout l;
  auto e = call(VMAT_SYS_MMAP, static_cast<int64_t>(pg(2)), {pg(2), P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 3, 2 * P});
  e.vma[0] = {pg(0), pg(3), VM_READ | kMay, 10, 42, 1, VMAT_VMA_VALID | VMAT_VMA_FILE};
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MMAP).apply(e, "/lib/x.so", l, ch));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(2)), 2, 3, 12u, VM_READ | kMay);
  EXPECT_EQ(l.find(pg(2))->path, "/lib/x.so");
}

// ---- munmap, brk, mremap: what they clear ------------------------------------

TEST(SyscallRules, MunmapTouchesAndClearsItsPageAlignedRange) {
  // AAAAAA -> AA--AA
  Layout l;
  l.mmap(anon(0, 6));
  auto e = call(VMAT_SYS_MUNMAP, 0, {pg(2), 2 * P - 100});
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(2), pg(4)}}));
  EXPECT_EQ(t.cleared, AddrRanges({{pg(2), pg(4)}}));
  EXPECT_EQ(Range(t.hints.replaced_start, t.hints.replaced_end), Range(pg(2), pg(4)));
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MUNMAP).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRW);
}

TEST(SyscallRules, BrkShrinkClearsTheTailAndMovesTheBreak) {
  // HHHH -> HH-- (the heap [start_brk, brk) loses its last two pages)
  Layout l;
  l.set_brk(pg(0), pg(4));
  l.mmap(anon(0, 4));
  ASSERT_EQ(l.size(), 1u);
  auto e = call(VMAT_SYS_BRK, static_cast<int64_t>(pg(2)), {pg(2)});
  e.start_brk = pg(0), e.brk = pg(2);
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(0), pg(4)}}));
  EXPECT_TRUE(t.hints.in_place_resize);
  EXPECT_EQ(t.cleared, AddrRanges({{pg(2), pg(4)}}));
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_BRK).apply(e, {}, l, ch));
  EXPECT_EQ(l.brk(), pg(2));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  // Growing clears nothing.
  e.brk = pg(3);
  EXPECT_TRUE(touched(e, l).cleared.empty());
}

TEST(SyscallRules, BrkTouchesOnlyTheHeapPieceAtTheBreak) {
  // HH-HH-HH -> HH-HH-HHHH: a heap with holes (stress-ng --brk keeps tens
  // of thousands of pieces) is looked at from the piece the break is in,
  // not walked from start_brk on every call.
  Layout l;
  l.set_brk(pg(0), pg(8));
  for (uint64_t s : {0, 3, 6}) l.mmap(anon(s, s + 2));
  ASSERT_EQ(l.size(), 3u);
  auto e = call(VMAT_SYS_BRK, static_cast<int64_t>(pg(10)), {pg(10)});
  e.start_brk = pg(0), e.brk = pg(10);
  EXPECT_EQ(brk_changes_from(e, l), pg(6));
  EXPECT_EQ(touched(e, l).spans, AddrRanges({{pg(6), pg(10)}}));
  // Shrinking into a piece: from that piece on.
  e.brk = pg(4);
  EXPECT_EQ(brk_changes_from(e, l), pg(3));
  // Down to start_brk, or with the model's break unknown: the whole heap.
  e.brk = pg(0);
  EXPECT_EQ(brk_changes_from(e, l), pg(0));
  Layout unknown;
  unknown.mmap(anon(0, 2));
  e.brk = pg(4);
  EXPECT_EQ(brk_changes_from(e, unknown), pg(0));
}

TEST(SyscallRules, MremapClearsTheOldRangeUnlessDontUnmap) {
  Layout l;
  l.mmap(anon(0, 2));
  // Moved: AA------ -> -----AA-; the whole old range goes.
  auto e =
      call(VMAT_SYS_MREMAP, static_cast<int64_t>(pg(5)), {pg(0), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, pg(5)});
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(0), pg(2)}, {pg(5), pg(7)}}));
  EXPECT_TRUE(t.hints.new_range_merges);
  EXPECT_FALSE(t.hints.in_place_resize);
  EXPECT_EQ(t.cleared, AddrRanges({{pg(0), pg(2)}}));
  // MREMAP_DONTUNMAP: the old range stays mapped.
  e.args[3] |= MREMAP_DONTUNMAP;
  EXPECT_TRUE(touched(e, l).cleared.empty());
  // Shrunk in place: AA -> A-; its tail goes.
  e = call(VMAT_SYS_MREMAP, static_cast<int64_t>(pg(0)), {pg(0), 2 * P, P, 0, 0});
  t = touched(e, l);
  EXPECT_TRUE(t.hints.in_place_resize);
  EXPECT_EQ(t.cleared, AddrRanges({{pg(1), pg(2)}}));
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MREMAP).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRW);
}

// ---- mlock family ---------------------------------------------------------

TEST(SyscallRules, MlockRoundsTheStartDownAndMlock2OnFaultAddsLockOnFault) {
  // AAAAAA -> A LL AAA (mlock2 MLOCK_ONFAULT) -> AAAAAA (munlock)
  Layout l;
  l.mmap(anon(0, 6));
  auto e = call(VMAT_SYS_MLOCK2, 0, {pg(1) + 100, 2 * P - 100, MLOCK_ONFAULT});
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(1), pg(3)}}));
  EXPECT_TRUE(t.cleared.empty());
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MLOCK2).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRW);
  EXPECT_VMA(l.find(pg(1)), 1, 3, apg(1), kRW | VM_LOCKED | VM_LOCKONFAULT);
  EXPECT_VMA(l.find(pg(3)), 3, 6, apg(3), kRW);

  e = call(VMAT_SYS_MUNLOCK, 0, {pg(1), 2 * P});
  ASSERT_TRUE(rule(VMAT_SYS_MUNLOCK).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);

  e = call(VMAT_SYS_MLOCK, 0, {pg(4), P});
  ASSERT_TRUE(rule(VMAT_SYS_MLOCK).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(4)), 4, 5, apg(4), kRW | VM_LOCKED);
}

TEST(SyscallRules, MlockallTouchesEverythingAndMunlockallUndoesIt) {
  // AA-BB -> LL-LL -> AA-BB
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5, VM_READ | kMay));
  auto e = call(VMAT_SYS_MLOCKALL, 0, {MCL_CURRENT | MCL_FUTURE});
  auto t = touched(e, l);
  ASSERT_EQ(t.spans.size(), 1u);
  EXPECT_LE(t.spans[0].first, pg(0));
  EXPECT_GE(t.spans[0].second, pg(5));
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MLOCKALL).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW | VM_LOCKED);
  EXPECT_VMA(l.find(pg(3)), 3, 5, apg(3), kRO | VM_LOCKED);
  EXPECT_EQ(l.def_flags(), VM_LOCKED);  // MCL_FUTURE

  e = call(VMAT_SYS_MUNLOCKALL, 0, {});
  ASSERT_TRUE(rule(VMAT_SYS_MUNLOCKALL).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_VMA(l.find(pg(3)), 3, 5, apg(3), kRO);
  EXPECT_EQ(l.def_flags(), 0u);
}

// ---- mprotect, pkey_mprotect, madvise --------------------------------------

TEST(SyscallRules, MprotectTouchesItsRangeAndSplits) {
  // AAAA -> A RR A
  Layout l;
  l.mmap(anon(0, 4));
  auto e = call(VMAT_SYS_MPROTECT, 0, {pg(1), 2 * P - 1, PROT_READ});
  auto t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(1), pg(3)}}));
  EXPECT_TRUE(t.cleared.empty());
  LayoutChange ch;
  ASSERT_TRUE(rule(VMAT_SYS_MPROTECT).apply(e, {}, l, ch));
  ASSERT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRW);
  EXPECT_VMA(l.find(pg(1)), 1, 3, apg(1), kRO);
  EXPECT_VMA(l.find(pg(3)), 3, 4, apg(3), kRW);
  EXPECT_EQ(ch.splits, 2);
}

// ---- shmat, shmdt ---------------------------------------------------------

TEST(SyscallRules, ShmatNeedsTheKernelVmaForItsSize) {
  Layout l;
  auto e = call(VMAT_SYS_SHMAT, static_cast<int64_t>(pg(0)), {7, 0, 0});
  auto t = touched(e, l);
  EXPECT_TRUE(t.spans.empty());
  LayoutChange ch;
  EXPECT_FALSE(rule(VMAT_SYS_SHMAT).apply(e, {}, l, ch));
  EXPECT_TRUE(l.empty());

  // SS-- : the segment's VMA as do_shmat() made it; shmdt takes it away.
  e.vma[0] = {pg(0), pg(2), VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE | kMay, 0,
              7,     1,     VMAT_VMA_VALID | VMAT_VMA_FILE | VMAT_VMA_DELETED};
  t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(0), pg(2)}}));
  EXPECT_TRUE(t.hints.new_range_merges);
  ASSERT_TRUE(rule(VMAT_SYS_SHMAT).apply(e, "/SYSV0000abcd", l, ch));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, 0u, VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE | kMay);
  EXPECT_EQ(syscall_result_range(rule(VMAT_SYS_SHMAT).range, e), Range(pg(0), pg(2)));

  e = call(VMAT_SYS_SHMDT, 0, {pg(0)});
  t = touched(e, l);
  EXPECT_EQ(t.spans, AddrRanges({{pg(0), pg(2)}}));
  EXPECT_EQ(t.cleared, AddrRanges({{pg(0), pg(2)}}));
  ASSERT_TRUE(rule(VMAT_SYS_SHMDT).apply(e, {}, l, ch));
  EXPECT_TRUE(l.empty());
}

}  // namespace
}  // namespace vmatrace
