// The layout model's mlock family, pkey_mprotect, shmat and shmdt, in the
// kernel tools/testing/vma style of layout_test.cpp: the layout before and
// after drawn as a map (one character per page, letters are VMAs; L: locked),
// every step checking start, end, pgoff, flags and the VMA count.

#include <gtest/gtest.h>

#include "core/layout.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::pages;

// ---- mlock / munlock / mlock2 ---------------------------------------------

TEST(LayoutMlock, MiddleSplitsIntoThreeAndMunlockMergesBack) {
  // AAAAAAAAAA -> AAA LLL AAAA -> AAAAAAAAAA   (mlock_fixup() -> vma_modify_flags())
  Layout l;
  l.mmap(anon(0, 10));
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mlock(pg(3), 3 * P, VM_LOCKED);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(ch.splits, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 3, apg(0), kRW);
  EXPECT_VMA(l.find(pg(3)), 3, 6, apg(3), kRW | VM_LOCKED);
  EXPECT_VMA(l.find(pg(6)), 6, 10, apg(6), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  ASSERT_EQ(ch.result.size(), 1u);
  EXPECT_EQ(ch.result[0].start, pg(3));
  ch = l.mlock(pg(3), 3 * P, 0);  // munlock
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(ch.merges, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 10, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
}

TEST(LayoutMlock, UnalignedStartRoundsDownAndLenUp) {
  // do_mlock(): len = PAGE_ALIGN(len + offset_in_page(start)), start &= PAGE_MASK.
  // AAAAAA mlock(page 2 + 100, 1 page) covers pages 2 and 3 -> AA LL AA
  Layout l;
  l.mmap(anon(0, 6));
  l.mlock(pg(2) + 100, P, VM_LOCKED);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW | VM_LOCKED);
  // len 0: nothing.
  l.mlock(pg(0), 0, VM_LOCKED);
  EXPECT_EQ(l.size(), 3u);
}

TEST(LayoutMlock, OnFaultAndPlainLockDifferAndRelock) {
  // mlock2(MLOCK_ONFAULT): VM_LOCKED|VM_LOCKONFAULT; a plain mlock over it
  // drops VM_LOCKONFAULT (newflags = flags & ~VM_LOCKED_MASK | VM_LOCKED).
  Layout l;
  l.mmap(anon(0, 6));
  l.mlock(pg(2), 2 * P, VM_LOCKED | VM_LOCKONFAULT);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW | VM_LOCKED | VM_LOCKONFAULT);
  // AA OO AA  mlock(all) -> LLLLLL: each piece changes and merges with prev.
  auto ch = l.mlock(pg(0), 6 * P, VM_LOCKED);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(ch.splits, 0);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW | VM_LOCKED);
  // Locking what is locked already: nothing (mlock_fixup(): newflags == oldflags).
  ch = l.mlock(pg(1), P, VM_LOCKED);
  EXPECT_FALSE(ch.splits || ch.merges || !ch.removed.empty());
  EXPECT_EQ(l.size(), 1u);
}

TEST(LayoutMlock, StopsAtHoleAndNeedsAVmaAtStart) {
  // AA.BB mlock(all): AA locked, the hole stops the walk (ENOMEM), BB unchanged.
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5));
  l.mlock(pg(0), 5 * P, VM_LOCKED);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW | VM_LOCKED);
  EXPECT_VMA(l.find(pg(3)), 3, 5, apg(3), kRW);
  // Starting in the hole: ENOMEM before anything changes.
  Layout k;
  k.mmap(anon(1, 3));
  k.mlock(pg(0), 3 * P, VM_LOCKED);
  EXPECT_VMA(k.find(pg(1)), 1, 3, apg(1), kRW);
}

TEST(LayoutMlock, SpecialHugetlbAndDroppableVmasAreLeftAlone) {
  // mlock_fixup(): !vma_supports_mlock() -> no VM_LOCKED, no split.
  for (uint64_t f : {VM_IO, VM_PFNMAP, VM_DONTEXPAND, VM_MIXEDMAP, VM_HUGETLB, VM_DROPPABLE}) {
    Layout l;
    l.mmap(anon(0, 6, kRW | f));
    auto ch = l.mlock(pg(2), 2 * P, VM_LOCKED);
    EXPECT_EQ(l.size(), 1u) << decode_vm_flags(f);
    EXPECT_EQ(ch.splits, 0) << decode_vm_flags(f);
    EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW | f);
  }
}

TEST(LayoutMlock, LockedNeighboursMergeAcrossVmas) {
  // LL AA  mlock(AA) -> LLLL: the range takes prev's flags and merges left.
  Layout l;
  l.mmap(anon(0, 2, kRW | VM_LOCKED));
  l.mmap(anon(2, 4));
  EXPECT_EQ(l.size(), 2u);
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mlock(pg(2), 2 * P, VM_LOCKED);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(ch.merges, 1);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW | VM_LOCKED);
  EXPECT_EQ(l.find(pg(0))->id, id);
}

// ---- mlockall / munlockall ---------------------------------------------------

TEST(LayoutMlockall, CurrentLocksEveryVmaAndMergesWhatOnlyLockingKeptApart) {
  // AA OOO AA .. BB (O: VM_LOCKED|VM_LOCKONFAULT)  mlockall(MCL_CURRENT)
  //   -> LLLLLLL .. LL: the three become equal and merge; BB is locked in place.
  Layout l;
  l.mmap(anon(0, 7));
  l.mlock(pg(2), 3 * P, VM_LOCKED | VM_LOCKONFAULT);
  l.mmap(anon(9, 11, kRO));
  ASSERT_EQ(l.size(), 4u);
  auto ch = l.mlockall(abi::kMclCurrent);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(ch.merges, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 7, apg(0), kRW | VM_LOCKED);
  EXPECT_VMA(l.find(pg(9)), 9, 11, apg(9), kRO | VM_LOCKED);
  EXPECT_EQ(l.def_flags(), 0u);  // no MCL_FUTURE
  // munlockall(): everything unlocked, in place (nothing to merge).
  ch = l.mlockall(0);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(ch.merges, 0);
  EXPECT_VMA(l.find(pg(0)), 0, 7, apg(0), kRW);
  EXPECT_VMA(l.find(pg(9)), 9, 11, apg(9), kRO);
}

TEST(LayoutMlockall, OnFaultLocksOnFault) {
  Layout l;
  l.mmap(anon(0, 2));
  l.mlockall(abi::kMclCurrent | abi::kMclOnFault);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW | VM_LOCKED | VM_LOCKONFAULT);
}

TEST(LayoutMlockall, FutureSetsDefFlagsForLaterMappingsAndTheHeap) {
  // mlockall(MCL_FUTURE) alone changes no VMA; mm->def_flags locks what
  // comes later: do_brk_flags() uses it directly (the model's mmap takes
  // the kernel's flags). munlockall() clears it.
  Layout l;
  l.set_brk(pg(100), pg(100));
  l.mmap(anon(0, 2));
  auto ch = l.mlockall(abi::kMclFuture);
  EXPECT_FALSE(ch.changed());
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_EQ(l.def_flags(), VM_LOCKED);
  l.brk(pg(102));
  EXPECT_VMA(l.find(pg(100)), 100, 102, apg(100), VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | VM_LOCKED);
  l.mlockall(abi::kMclFuture | abi::kMclOnFault);
  EXPECT_EQ(l.def_flags(), VM_LOCKED | VM_LOCKONFAULT);
  l.mlockall(0);
  EXPECT_EQ(l.def_flags(), 0u);
  EXPECT_VMA(l.find(pg(100)), 100, 102, apg(100), VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT);
}

TEST(LayoutMlockall, SkipsSpecialMappingsAndTheGateVma) {
  // [vdso] (VM_DONTEXPAND) and the gate VMA ([vsyscall], above user space,
  // not in the mm's tree) never get VM_LOCKED.
  Layout l;
  Vma vdso = anon(0, 2, VM_READ | VM_EXEC | kMay | VM_DONTEXPAND);
  vdso.special = "[vdso]";
  Vma gate;
  gate.start = 0xffffffffff600000;
  gate.end = gate.start + P;
  gate.flags = VM_EXEC;
  gate.special = "[vsyscall]";
  l.seed({vdso, anon(4, 6), gate});
  l.mlockall(abi::kMclCurrent);
  EXPECT_EQ(l.find(pg(0))->flags, vdso.flags);
  EXPECT_EQ(l.find(gate.start)->flags, VM_EXEC);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRW | VM_LOCKED);
}

TEST(LayoutMlockall, NotInheritedByForkNorKeptLocksInChild) {
  // mm_init(): def_flags & VM_INIT_DEF_MASK; dup_mmap() drops VM_LOCKED.
  Layout parent;
  parent.mmap(anon(0, 2));
  parent.mlockall(abi::kMclCurrent | abi::kMclFuture);
  Layout child;
  child.fork_from(parent);
  EXPECT_EQ(child.def_flags(), 0u);
  EXPECT_VMA(child.find(pg(0)), 0, 2, apg(0), kRW);
}

// ---- pkey_mprotect --------------------------------------------------------

TEST(LayoutPkeyMprotect, KeySetsPkeyBitsAndKeepsTheRangeApart) {
  // AAAAAA pkey_mprotect(2 pages, PROT_READ|PROT_WRITE, key 5) -> AA KK AA:
  // same perms, different VM_PKEY_BIT*: three VMAs (maps shows them alike).
  Layout l;
  l.mmap(anon(0, 6));
  auto ch = l.mprotect(pg(2), 2 * P, abi::kProtRead | abi::kProtWrite, 5);
  EXPECT_EQ(ch.splits, 2);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW | VM_PKEY_BIT0 | VM_PKEY_BIT2);
  // Back to key 0: merges again.
  ch = l.mprotect(pg(2), 2 * P, abi::kProtRead | abi::kProtWrite, 0);
  EXPECT_EQ(ch.merges, 2);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);
}

TEST(LayoutPkeyMprotect, MinusOneIsMprotectAndKeepsTheKey) {
  Layout l;
  l.mmap(anon(0, 4, kRW | VM_PKEY_BIT1));
  l.mprotect(pg(0), 2 * P, abi::kProtRead, -1);
  EXPECT_EQ(l.size(), 2u);
  // (never faulted: mprotect_fixup() also drops VM_ACCOUNT turning read-only)
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRO | VM_PKEY_BIT1);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW | VM_PKEY_BIT1);
}

// ---- shmat / shmdt -----------------------------------------------------------

TEST(LayoutShm, AttachIsASharedFileMappingAtOffsetZero) {
  Layout l;
  Vma v = shm(0, 3);
  v.pgoff = 99;  // whatever the caller has: shmat maps offset 0
  auto ch = l.shmat(v);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 3, 0u, kShmRW);
  EXPECT_TRUE(l.find(pg(0))->is_sysv_shm());
  EXPECT_EQ(maps_name(l, *l.find(pg(0))), "/SYSV0000abcd (deleted)");
  EXPECT_EQ(l.find(pg(0))->perms(), "rw-s");
  ASSERT_EQ(ch.result.size(), 1u);
}

TEST(LayoutShm, TwoAttachesOfOneSegmentNeverMerge) {
  // AAA then AAA again right after it (same segment): two VMAs, each its own
  // struct file. Split and rejoin one: its pieces (one file) merge back.
  Layout l;
  l.shmat(shm(0, 3));
  l.shmat(shm(3, 6));
  EXPECT_EQ(l.size(), 2u);
  l.mprotect(pg(1), P, abi::kProtRead);
  EXPECT_EQ(l.size(), 4u);
  l.mprotect(pg(1), P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 3, 0u, kShmRW);
  EXPECT_VMA(l.find(pg(3)), 3, 6, 0u, kShmRW);
}

TEST(LayoutShm, DetachRemovesEveryPieceOfTheAttachAtThatAddress) {
  // AaA BBB  (A split by mprotect; B a second attach of the same segment)
  // shmdt(A) -> ... BBB: all three pieces of A go (their pgoff is their
  // distance from the address), B stays.
  Layout l;
  l.shmat(shm(0, 3));
  l.shmat(shm(3, 6));
  l.mprotect(pg(1), P, abi::kProtRead);
  ASSERT_EQ(l.size(), 4u);
  auto ranges = l.shmdt_ranges(pg(0));
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0], std::make_pair(pg(0), pg(1)));
  EXPECT_EQ(ranges[2], std::make_pair(pg(2), pg(3)));
  auto ch = l.shmdt(pg(0));
  EXPECT_EQ(ch.removed.size(), 3u);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(3)), 3, 6, 0u, kShmRW);
  l.shmdt(pg(3));
  EXPECT_TRUE(l.empty());
}

TEST(LayoutShm, DetachFindsTheSegmentAfterAPartialMunmapOfItsHead) {
  // munmap of the attach's first page: the rest (pgoff 1) still attaches at
  // the address, so shmdt(address) removes it.
  Layout l;
  l.shmat(shm(0, 3));
  l.munmap(pg(0), P);
  EXPECT_VMA(l.find(pg(1)), 1, 3, 1u, kShmRW);
  l.shmdt(pg(0));
  EXPECT_TRUE(l.empty());
}

TEST(LayoutShm, DetachIgnoresWhatIsNotAnAttachAtTheAddress) {
  // shmdt of an unaligned address (EINVAL), of an ordinary shared file or
  // anonymous mapping, or at an address where no attach starts: nothing.
  Layout l;
  l.mmap(anon(0, 2));
  Vma f = shm(2, 4);
  f.path = "/tmp/file";  // a shared file mapping, not SysV shm
  f.deleted = false;
  l.mmap(f);
  l.shmat(shm(5, 8));
  EXPECT_TRUE(l.shmdt_ranges(pg(5) + 1).empty());
  // From page 0 the scan reaches the attach at 5, but its pgoff (0) is not its distance (5).
  EXPECT_TRUE(l.shmdt_ranges(pg(0)).empty());
  EXPECT_TRUE(l.shmdt_ranges(pg(6)).empty());
  l.shmdt(pg(2));
  EXPECT_EQ(l.size(), 3u);
}

TEST(LayoutShm, IsSysvShmNeedsTheKernelsName) {
  Vma v = shm(0, 1);
  EXPECT_TRUE(v.is_sysv_shm());
  v.deleted = false;
  EXPECT_FALSE(v.is_sysv_shm());
  v = shm(0, 1);
  v.path = "/SYSV0000abc";  // 7 hex digits
  EXPECT_FALSE(v.is_sysv_shm());
  v.path = "/SYSV0000abcg";
  EXPECT_FALSE(v.is_sysv_shm());
  v.path = "/dev/zero";
  EXPECT_FALSE(v.is_sysv_shm());
}

}  // namespace
}  // namespace vmatrace
