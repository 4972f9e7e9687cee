// Kernel tools/testing/vma style: each case one rule, the layout before and
// after drawn as a map (one character per page, letters are VMAs), and every
// step checks start, end, pgoff, flags and the VMA count.

#include <gtest/gtest.h>

#include <set>

#include "core/layout.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::pages;

// ---- mmap: merges -------------------------------------------------------

TEST(LayoutMmap, MergesWithPrev) {
  // AAA.   ->  AAAA
  Layout l;
  l.mmap(anon(0, 3));
  auto ch = l.mmap(anon(3, 4));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  EXPECT_EQ(ch.merges, 1);
  ASSERT_EQ(ch.result.size(), 1u);
  EXPECT_EQ(ch.result[0].end, pg(4));
}

TEST(LayoutMmap, MergesWithNextKeepsNextId) {
  // .BBB   ->  BBBB   (next expands down, takes the new pgoff)
  Layout l;
  l.mmap(anon(1, 4));
  const uint64_t id = l.find(pg(1))->id;
  l.mmap(anon(0, 1));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
}

TEST(LayoutMmap, MergesBothSidesKeepsPrevId) {
  // AA.BB  ->  AAAAA  (prev survives, next deleted)
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5));
  const uint64_t a = l.find(pg(0))->id, b = l.find(pg(3))->id;
  EXPECT_EQ(l.size(), 2u);
  auto ch = l.mmap(anon(2, 3));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 5, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_EQ(ch.merges, 2);
  ASSERT_EQ(ch.removed.size(), 1u);
  EXPECT_EQ(ch.removed[0].id, b);
}

TEST(LayoutMmap, FlagCombinationsThatBlockOrAllowMerge) {
  // AA + BB adjacent: merge iff flags equal ignoring VM_SOFTDIRTY and no VM_SPECIAL.
  const uint64_t extras[] = {0, VM_SOFTDIRTY, VM_DONTCOPY, VM_LOCKED, VM_DONTDUMP, VM_HUGEPAGE, VM_NORESERVE};
  for (uint64_t a : extras) {
    for (uint64_t b : extras) {
      Layout l;
      l.mmap(anon(0, 2, kRW | a));
      l.mmap(anon(2, 4, kRW | b));
      const bool merge = ((a ^ b) & ~VM_SOFTDIRTY) == 0;
      EXPECT_EQ(l.size(), merge ? 1u : 2u) << decode_vm_flags(a) << " / " << decode_vm_flags(b);
      if (merge) {
        EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW | a | (b & VM_SOFTDIRTY));
      }
    }
  }
}

TEST(LayoutMmap, SpecialFlagsNeverMerge) {
  for (uint64_t sp : {VM_IO, VM_DONTEXPAND, VM_PFNMAP, VM_MIXEDMAP}) {
    Layout l;
    l.mmap(anon(0, 2, kRW | sp));
    l.mmap(anon(2, 4, kRW | sp));
    EXPECT_EQ(l.size(), 2u) << decode_vm_flags(sp);
  }
}

TEST(LayoutMmap, KernelNamedSpecialNeverMerges) {
  Layout l;
  Vma vdso = anon(0, 2, VM_READ | VM_EXEC | kMay);
  vdso.special = "[vdso]";
  l.mmap(vdso);
  l.mmap(anon(2, 4, VM_READ | VM_EXEC | kMay));
  EXPECT_EQ(l.size(), 2u);
}

TEST(LayoutMmap, SharedAnonymousNeverMerges) {
  Layout l;
  l.mmap(anon(0, 2, VM_READ | VM_WRITE | kMay | VM_SHARED | VM_MAYSHARE));
  l.mmap(anon(2, 4, VM_READ | VM_WRITE | kMay | VM_SHARED | VM_MAYSHARE));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.find(pg(0))->pgoff, 0u);
  EXPECT_EQ(l.find(pg(0))->perms(), "rw-s");
}

TEST(LayoutMmap, AnonNamesMustMatch) {
  Layout l;
  Vma a = anon(0, 2), b = anon(2, 4);
  a.anon_name = "x";
  b.anon_name = "y";
  l.mmap(a);
  l.mmap(b);
  EXPECT_EQ(l.size(), 2u);
  Vma c = anon(4, 5);
  c.anon_name = "y";
  l.mmap(c);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(2)), 2, 5, apg(2), kRW);
}

TEST(LayoutMmap, FileMergesOnlyWithContiguousPgoff) {
  // file pages 0..1 at AA, then pages 2..3 at BB: contiguous -> one VMA
  Layout l;
  l.mmap(file(0, 2, 0));
  l.mmap(file(2, 4, 2));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, 0u, kRO);
  // file pages 10.. at CC right after: not contiguous (4 != 10)
  l.mmap(file(4, 6, 10));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(4)), 4, 6, 10u, kRO);
}

TEST(LayoutMmap, DifferentFilesDoNotMerge) {
  Layout l;
  l.mmap(file(0, 2, 0, 42));
  l.mmap(file(2, 4, 2, 43));
  EXPECT_EQ(l.size(), 2u);
  // Same inode but known distinct struct files (two open()s): no merge.
  Layout k;
  Vma a = file(0, 2, 0), b = file(2, 4, 2);
  a.file_key = 1;
  b.file_key = 2;
  k.mmap(a);
  k.mmap(b);
  EXPECT_EQ(k.size(), 2u);
  // File next to anonymous: no merge.
  Layout m;
  m.mmap(file(0, 2, 0, 42, kRW));
  m.mmap(anon(2, 4));
  EXPECT_EQ(m.size(), 2u);
}

TEST(LayoutMmap, SharedVsPrivateDoNotMerge) {
  Layout l;
  l.mmap(file(0, 2, 0, 42, kRO));
  l.mmap(file(2, 4, 2, 42, kRO | VM_MAYSHARE));
  EXPECT_EQ(l.size(), 2u);
}

TEST(LayoutMmap, AnonymousPgoffIsStartPage) {
  Layout l;
  Vma v = anon(5, 7);
  v.pgoff = 12345;  // ignored: do_mmap() uses addr >> PAGE_SHIFT
  l.mmap(v);
  EXPECT_VMA(l.find(pg(5)), 5, 7, apg(5), kRW);
}

TEST(LayoutMmap, OverExistingSplitsAndReplaces) {
  // AAAAAA, mmap r-- at pages 2..3 -> AA BB AA
  Layout l;
  l.mmap(anon(0, 6));
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mmap(anon(2, 4, kRO));
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRO);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  EXPECT_EQ(ch.splits, 2);
  ASSERT_EQ(ch.removed.size(), 1u);
  EXPECT_EQ(ch.removed[0].start, pg(2));
  EXPECT_EQ(ch.removed[0].end, pg(4));
}

TEST(LayoutMmap, OverExistingWithSameFlagsMergesBack) {
  // AAAAAA, MAP_FIXED rw- anon at 2..3: split, unmap, the new range merges
  // with both remnants (pgoff stays linear) -> AAAAAA, id of the head.
  Layout l;
  l.mmap(anon(0, 6));
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mmap(anon(2, 4));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  EXPECT_EQ(ch.splits, 2);
  EXPECT_EQ(ch.merges, 2);
}

TEST(LayoutMmap, OverSeveralVmas) {
  // AA BB CC  mmap over 1..5 -> A NNNN C
  Layout l;
  l.mmap(anon(0, 2, kRO));
  l.mmap(anon(2, 4, kNone));
  l.mmap(anon(4, 6, kRO | VM_EXEC));
  EXPECT_EQ(l.size(), 3u);
  auto ch = l.mmap(anon(1, 5));
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRO);
  EXPECT_VMA(l.find(pg(1)), 1, 5, apg(1), kRW);
  EXPECT_VMA(l.find(pg(5)), 5, 6, apg(5), kRO | VM_EXEC);
  EXPECT_EQ(ch.removed.size(), 3u);
}

TEST(LayoutMmap, RejectsBadVma) {
  Layout l;
  Vma v = anon(0, 1);
  v.end = v.start + 100;
  EXPECT_THROW(l.mmap(v), std::invalid_argument);
}

// ---- munmap -------------------------------------------------------------

TEST(LayoutMunmap, Head) {
  // AAAA -> ..AA ; the surviving upper piece gets a new id
  Layout l;
  l.mmap(anon(0, 4));
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.munmap(pg(0), 2 * P);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW);
  EXPECT_NE(l.find(pg(2))->id, id);
  EXPECT_EQ(ch.splits, 1);
  ASSERT_EQ(ch.removed.size(), 1u);
  EXPECT_EQ(ch.removed[0].id, id);
}

TEST(LayoutMunmap, Tail) {
  // AAAA -> AA..
  Layout l;
  l.mmap(anon(0, 4));
  const uint64_t id = l.find(pg(0))->id;
  l.munmap(pg(2), 2 * P);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
}

TEST(LayoutMunmap, MiddleLenRoundedUp) {
  // AAAA, munmap(page 1, 1 byte) -> A.AA
  Layout l;
  l.mmap(anon(0, 4));
  auto ch = l.munmap(pg(1), 1);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRW);
  EXPECT_EQ(l.find(pg(1)), nullptr);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW);
  EXPECT_EQ(ch.splits, 2);
}

TEST(LayoutMunmap, MiddleOfFileKeepsOffsets) {
  // file pages 10..15 at 0..5, unmap 2..3 -> pgoff 10 and 14
  Layout l;
  l.mmap(file(0, 6, 10));
  l.munmap(pg(2), 2 * P);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, 10u, kRO);
  EXPECT_VMA(l.find(pg(4)), 4, 6, 14u, kRO);
}

TEST(LayoutMunmap, SpanningSeveralVmasAndHoles) {
  // AA.BB.CC  munmap 1..7 -> A......C
  Layout l;
  l.mmap(anon(0, 2, kRO));
  l.mmap(anon(3, 5));
  l.mmap(anon(6, 8, kRO));
  auto ch = l.munmap(pg(1), 6 * P);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 1, apg(0), kRO);
  EXPECT_VMA(l.find(pg(7)), 7, 8, apg(7), kRO);
  EXPECT_EQ(ch.removed.size(), 3u);
}

TEST(LayoutMunmap, NoMergeAfterwardsAndInvalidArgs) {
  Layout l;
  l.mmap(anon(0, 4));
  EXPECT_FALSE(l.munmap(pg(0) + 1, P).changed());  // unaligned: EINVAL
  EXPECT_FALSE(l.munmap(pg(0), 0).changed());      // zero length: EINVAL
  EXPECT_FALSE(l.munmap(pg(10), P).changed());     // nothing there
  EXPECT_EQ(l.size(), 1u);
}

TEST(LayoutMunmap, SealedRangeFailsWhole) {
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(2, 4, kRO | VM_SEALED));
  EXPECT_FALSE(l.munmap(pg(0), 4 * P).changed());
  EXPECT_EQ(l.size(), 2u);
}

// ---- mprotect -----------------------------------------------------------

TEST(LayoutMprotect, MiddleSplitsIntoThreeAndMergesBack) {
  // AAAAAA -> AA BB AA -> AAAAAA
  Layout l;
  l.mmap(anon(0, 6));
  l.fault(pg(0));  // pages written: the VMA has an anon_vma
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mprotect(pg(2), 2 * P, abi::kProtRead);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(ch.splits, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRO | VM_ACCOUNT);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  ch = l.mprotect(pg(2), 2 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(ch.merges, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  ASSERT_EQ(ch.result.size(), 1u);
  EXPECT_EQ(ch.result[0].start, pg(0));
  EXPECT_EQ(ch.result[0].end, pg(6));
}

TEST(LayoutMprotect, HeadMergesLeftMiddleShrinks) {
  // AA BBBB (B r--)  mprotect(B head 2 pages, rw) -> AAAA BB, B keeps id
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(2, 6, kRO | VM_ACCOUNT));
  const uint64_t a = l.find(pg(0))->id, b = l.find(pg(2))->id;
  auto ch = l.mprotect(pg(2), 2 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(ch.splits, 0);
  EXPECT_EQ(ch.merges, 1);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRO | VM_ACCOUNT);
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_EQ(l.find(pg(4))->id, b);
}

TEST(LayoutMprotect, TailMergesRightNextExpands) {
  // AAAA BB (A r--)  mprotect(A tail, rw) -> AA BBBB, B keeps id
  Layout l;
  l.mmap(anon(0, 4, kRO | VM_ACCOUNT));
  l.mmap(anon(4, 6));
  const uint64_t b = l.find(pg(4))->id;
  l.mprotect(pg(2), 2 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRO | VM_ACCOUNT);
  EXPECT_VMA(l.find(pg(2)), 2, 6, apg(2), kRW);
  EXPECT_EQ(l.find(pg(2))->id, b);
}

TEST(LayoutMprotect, WholeVmaMergesIntoNextWhenFlagsAlreadyEqual) {
  // AA BB (A rw, B r--), mprotect(A..B, r--): A changes and merges into B;
  // B is unchanged and never visited for merging itself.
  Layout l;
  l.mmap(anon(0, 2));
  l.fault(pg(0));
  l.mmap(anon(2, 4, kRO | VM_ACCOUNT));
  const uint64_t b = l.find(pg(2))->id;
  l.mprotect(pg(0), 4 * P, abi::kProtRead);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRO | VM_ACCOUNT);
  EXPECT_EQ(l.find(pg(0))->id, b);
}

TEST(LayoutMprotect, UnchangedFlagsDoNotMerge) {
  // Two adjacent r-- VMAs that differ in pgoff stay two; mprotect with the
  // same prot is a no-op (no merge attempt).
  Layout l;
  Vma a = anon(0, 2, kRO), b = anon(2, 4, kRO);
  l.seed({a, b});
  auto ch = l.mprotect(pg(0), 4 * P, abi::kProtRead);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(ch.merges, 0);
  EXPECT_EQ(ch.splits, 0);
}

TEST(LayoutMprotect, AccountingWhenTurningWritable) {
  // PROT_NONE private anon has no VM_ACCOUNT; turning writable charges it.
  Layout l;
  l.mmap(anon(0, 4, kNone));
  l.mprotect(pg(0), 4 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  // Shared and NORESERVE mappings are never charged.
  Layout s;
  s.mmap(anon(0, 4, kNone | VM_NORESERVE));
  s.mprotect(pg(0), 4 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_VMA(s.find(pg(0)), 0, 4, apg(0), VM_READ | VM_WRITE | kMay | VM_NORESERVE);
}

TEST(LayoutMprotect, ReadOnlyUnchargesNeverFaultedAnonymous) {
  // 6.7+ mprotect_fixup(): an anonymous VMA without anon_vma loses
  // VM_ACCOUNT when it stops being writable (the running kernel does this,
  // see LiveKernel in proc_maps_test). With pages faulted it keeps it, and
  // private file mappings always keep it (RELRO shows "ac").
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(4, 6));
  l.fault(pg(4));
  l.mmap(file(8, 10, 0, 42, kRW));
  l.mprotect(pg(0), 10 * P, abi::kProtRead);  // stops at the hole at 2, see StopsAtHole
  l.mprotect(pg(4), 2 * P, abi::kProtRead);
  l.mprotect(pg(8), 2 * P, abi::kProtRead);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRO);
  EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), kRO | VM_ACCOUNT);
  EXPECT_VMA(l.find(pg(8)), 8, 10, 0u, kRO | VM_ACCOUNT);
  EXPECT_EQ(l.size(), 3u);
}

TEST(LayoutMprotect, BeyondMayFlagsFailsWithEacces) {
  // shared read-only file (no VM_MAYWRITE): PROT_WRITE is refused
  Layout l;
  l.mmap(file(0, 2, 0, 42, VM_READ | VM_MAYREAD | VM_MAYEXEC | VM_MAYSHARE));
  auto ch = l.mprotect(pg(0), 2 * P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(ch.splits, 0);
  EXPECT_EQ(l.find(pg(0))->flags & VM_WRITE, 0u);
}

TEST(LayoutMprotect, StopsAtHole) {
  // AA.BB mprotect(0..5, r--): A changes, the hole gives ENOMEM, B stays.
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5));
  l.fault(pg(0));
  l.mprotect(pg(0), 5 * P, abi::kProtRead);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRO | VM_ACCOUNT);
  EXPECT_VMA(l.find(pg(3)), 3, 5, apg(3), kRW);
  // Start in a hole: nothing at all.
  Layout k;
  k.mmap(anon(1, 3));
  EXPECT_FALSE(k.mprotect(pg(0), 3 * P, abi::kProtRead).changed());
  EXPECT_VMA(k.find(pg(1)), 1, 3, apg(1), kRW);
}

TEST(LayoutMprotect, GrowsDownExtendsToVmaStart) {
  Layout l;
  l.mmap(anon(0, 4, kRW | VM_GROWSDOWN));
  l.fault(pg(0));
  l.mprotect(pg(2), P, abi::kProtRead | abi::kProtExec | abi::kProtGrowsDown);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 3, apg(0), VM_READ | VM_EXEC | kMay | VM_ACCOUNT | VM_GROWSDOWN);
  EXPECT_VMA(l.find(pg(3)), 3, 4, apg(3), kRW | VM_GROWSDOWN);
}

TEST(LayoutMprotect, SpecialFlagsSplitButNeverMerge) {
  Layout l;
  l.mmap(anon(0, 4, kRW | VM_IO));
  l.mprotect(pg(1), P, abi::kProtRead);
  EXPECT_EQ(l.size(), 3u);
  l.mprotect(pg(1), P, abi::kProtRead | abi::kProtWrite);
  EXPECT_EQ(l.size(), 3u);
}

TEST(LayoutMprotect, FileNonContiguousNeighbourDoesNotMerge) {
  // A (file pages 0..1) B (file pages 5..6, r-x): mprotect B to r--: flags
  // match A but pgoff 2 != 5.
  Layout l;
  l.mmap(file(0, 2, 0));
  l.mmap(file(2, 4, 5, 42, kRO | VM_EXEC));
  l.mprotect(pg(2), 2 * P, abi::kProtRead);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, 5u, kRO);
}

// ---- madvise ------------------------------------------------------------

TEST(LayoutMadvise, FlagBehaviours) {
  struct Case {
    int advice;
    uint64_t before, after;
  };
  const Case cases[] = {
      {abi::kMadvDontFork, kRW, kRW | VM_DONTCOPY},
      {abi::kMadvDoFork, kRW | VM_DONTCOPY, kRW},
      {abi::kMadvDontDump, kRW, kRW | VM_DONTDUMP},
      {abi::kMadvDoDump, kRW | VM_DONTDUMP, kRW},
      {abi::kMadvWipeOnFork, kRW, kRW | VM_WIPEONFORK},
      {abi::kMadvKeepOnFork, kRW | VM_WIPEONFORK, kRW},
      {abi::kMadvHugePage, kRW | VM_NOHUGEPAGE, kRW | VM_HUGEPAGE},
      {abi::kMadvNoHugePage, kRW | VM_HUGEPAGE, kRW | VM_NOHUGEPAGE},
      {abi::kMadvMergeable, kRW, kRW | VM_MERGEABLE},
      {abi::kMadvUnmergeable, kRW | VM_MERGEABLE, kRW},
      {abi::kMadvSequential, kRW | VM_RAND_READ, kRW | VM_SEQ_READ},
      {abi::kMadvRandom, kRW | VM_SEQ_READ, kRW | VM_RAND_READ},
      {abi::kMadvNormal, kRW | VM_SEQ_READ, kRW},
      {abi::kMadvDontNeed, kRW, kRW},
      {abi::kMadvFree, kRW, kRW},
  };
  for (const auto& c : cases) {
    // AAAAAA, advise the middle -> AA BB AA (or unchanged for non-flag advice)
    Layout l;
    l.mmap(anon(0, 6, c.before));
    auto ch = l.madvise(pg(2), 2 * P, c.advice);
    SCOPED_TRACE(c.advice);
    if (c.before == c.after) {
      EXPECT_EQ(l.size(), 1u);
      EXPECT_EQ(ch.splits, 0);
    } else {
      EXPECT_EQ(l.size(), 3u);
      EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), c.after);
      EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), c.before);
      EXPECT_VMA(l.find(pg(4)), 4, 6, apg(4), c.before);
    }
  }
}

TEST(LayoutMadvise, SplitsThenMergesBack) {
  Layout l;
  l.mmap(anon(0, 6));
  l.madvise(pg(2), 2 * P, abi::kMadvDontFork);
  EXPECT_EQ(l.size(), 3u);
  auto ch = l.madvise(pg(2), 2 * P, abi::kMadvDoFork);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(ch.merges, 2);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);
}

TEST(LayoutMadvise, SkipsHolesAndStopsOnError) {
  // AA.BB madvise(DONTDUMP) over all: both change, the hole is skipped.
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5));
  l.madvise(pg(0), 5 * P, abi::kMadvDontDump);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW | VM_DONTDUMP);
  EXPECT_VMA(l.find(pg(3)), 3, 5, apg(3), kRW | VM_DONTDUMP);
  // WIPEONFORK on a file VMA is EINVAL and stops the walk.
  Layout k;
  k.mmap(file(0, 2, 0, 42, kRW));
  k.mmap(anon(2, 4));
  k.madvise(pg(0), 4 * P, abi::kMadvWipeOnFork);
  EXPECT_VMA(k.find(pg(0)), 0, 2, 0u, kRW);
  EXPECT_VMA(k.find(pg(2)), 2, 4, apg(2), kRW);
}

TEST(LayoutMadvise, MergeableIgnoredForShared) {
  Layout l;
  const uint64_t shared = VM_READ | VM_WRITE | kMay | VM_SHARED | VM_MAYSHARE;
  l.mmap(anon(0, 2, shared));
  auto ch = l.madvise(pg(0), 2 * P, abi::kMadvMergeable);
  EXPECT_EQ(ch.splits, 0);
  EXPECT_VMA(l.find(pg(0)), 0, 2, 0u, shared);
}

// ---- mremap -------------------------------------------------------------

TEST(LayoutMremap, ShrinkInPlace) {
  // AAAA -> AA..
  Layout l;
  l.mmap(anon(0, 4));
  const uint64_t id = l.find(pg(0))->id;
  auto ch = l.mremap(pg(0), 4 * P, 2 * P, 0, pg(0));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, id);
  EXPECT_EQ(ch.removed.size(), 1u);
}

TEST(LayoutMremap, GrowInPlace) {
  // AA.. -> AAAA
  Layout l;
  l.mmap(anon(0, 2));
  auto ch = l.mremap(pg(0), 2 * P, 4 * P, abi::kMremapMayMove, pg(0));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  EXPECT_EQ(ch.merges, 0);
}

TEST(LayoutMremap, GrowInPlaceMergesWithNext) {
  // AA..BB (B at linear pgoff) -> AAAAAA, A's id
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(4, 6));
  const uint64_t a = l.find(pg(0))->id;
  auto ch = l.mremap(pg(0), 2 * P, 4 * P, 0, pg(0));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 6, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_EQ(ch.merges, 1);
}

TEST(LayoutMremap, GrowBlockedMovesAndKeepsPgoff) {
  // AAB. ....  grow A to 4 pages: blocked by B, kernel moves it to 10..13
  Layout l;
  l.mmap(anon(0, 2));
  l.fault(pg(0));
  l.mmap(anon(2, 3, kRO));
  const uint64_t a = l.find(pg(0))->id;
  auto ch = l.mremap(pg(0), 2 * P, 4 * P, abi::kMremapMayMove, pg(10));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.find(pg(0)), nullptr);
  EXPECT_VMA(l.find(pg(10)), 10, 14, apg(0), kRW);  // pgoff kept
  EXPECT_EQ(l.find(pg(10))->id, a);                 // a whole VMA moved keeps its identity
  ASSERT_EQ(ch.result.size(), 1u);
  EXPECT_EQ(ch.result[0].start, pg(10));
}

TEST(LayoutMremap, MoveDoesNotMergeAtDestinationWithoutContiguousPgoff) {
  // ..........CC   move A (pgoff of page 0) next to C at 10: pgoff 0+.. != C's
  Layout l;
  l.mmap(anon(0, 2));
  l.fault(pg(0));
  l.mmap(anon(12, 14));
  l.mremap(pg(0), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(10));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(10)), 10, 12, apg(0), kRW);
  EXPECT_VMA(l.find(pg(12)), 12, 14, apg(12), kRW);
}

TEST(LayoutMremap, MoveBackMergesWhenPgoffContiguous) {
  // AAAA -> move pages 2..3 away -> AA ... XX -> move back -> AAAA
  Layout l;
  l.mmap(anon(0, 4));
  l.fault(pg(0));
  const uint64_t a = l.find(pg(0))->id;
  l.mremap(pg(2), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(20));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(20)), 20, 22, apg(2), kRW);
  auto ch = l.mremap(pg(20), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(2));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kRW);
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_EQ(ch.merges, 1);
}

TEST(LayoutMremap, NeverFaultedAnonymousMoveRebasesPgoffAndMerges) {
  // copy_vma(): without an anon_vma the moved VMA takes pgoff = new_addr >> 12,
  // so it merges with a linear neighbour at the destination.
  // AA........CC  ->  ..........BBCC -> one VMA [10, 14)
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(12, 14));
  const uint64_t c = l.find(pg(12))->id;
  auto ch = l.mremap(pg(0), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(10));
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(10)), 10, 14, apg(10), kRW);
  EXPECT_EQ(l.find(pg(10))->id, c);  // next expanded down
  EXPECT_EQ(ch.merges, 1);
}

TEST(LayoutMremap, FixedUnmapsDestinationAndShrinks) {
  // AAAA ..BBBB  mremap(A, 4 -> 2, FIXED at 6): B's head unmapped, A's tail gone
  Layout l;
  l.mmap(anon(0, 4));
  l.fault(pg(0));
  l.mmap(anon(6, 10, kRO));
  l.mremap(pg(0), 4 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(6));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.find(pg(0)), nullptr);
  EXPECT_VMA(l.find(pg(6)), 6, 8, apg(0), kRW);
  EXPECT_VMA(l.find(pg(8)), 8, 10, apg(8), kRO);
}

TEST(LayoutMremap, PartialMoveSplitsSource) {
  // file pages 0..5 at 0..5; move pages 2..3 -> pgoff 2 at destination
  Layout l;
  l.mmap(file(0, 6, 0));
  l.mremap(pg(2), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(20));
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, 0u, kRO);
  EXPECT_VMA(l.find(pg(4)), 4, 6, 4u, kRO);
  EXPECT_VMA(l.find(pg(20)), 20, 22, 2u, kRO);
}

TEST(LayoutMremap, DontUnmapLeavesSourceWithoutAccountAndLock) {
  Layout l;
  l.mmap(anon(0, 2, kRW | VM_LOCKED));
  l.fault(pg(0));
  const uint64_t a = l.find(pg(0))->id;
  l.mremap(pg(0), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapDontUnmap, pg(10));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), (kRW | VM_LOCKED) & ~(VM_ACCOUNT | VM_LOCKED));
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_VMA(l.find(pg(10)), 10, 12, apg(0), kRW | VM_LOCKED);
  EXPECT_NE(l.find(pg(10))->id, a);
  // DONTUNMAP needs equal sizes.
  EXPECT_FALSE(l.mremap(pg(10), 2 * P, 4 * P, abi::kMremapMayMove | abi::kMremapDontUnmap, pg(30)).changed());
}

TEST(LayoutMremap, MultiVmaFixedMove) {
  // AB (different flags) moved together (6.17+)
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(2, 4, kRO));
  l.fault(pg(0));
  l.fault(pg(2));
  l.mremap(pg(0), 4 * P, 4 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(10));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(10)), 10, 12, apg(0), kRW);
  EXPECT_VMA(l.find(pg(12)), 12, 14, apg(2), kRO);
}

TEST(LayoutMremap, InvalidCombinationsChangeNothing) {
  Layout l;
  l.mmap(anon(0, 2));
  EXPECT_FALSE(l.mremap(pg(0), 2 * P, 4 * P, abi::kMremapFixed, pg(10)).changed());  // FIXED without MAYMOVE
  EXPECT_FALSE(l.mremap(pg(0) + 1, 2 * P, 4 * P, abi::kMremapMayMove, pg(10)).changed());
  EXPECT_FALSE(l.mremap(pg(0), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, pg(1)).changed());  // overlap
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
}

// ---- brk ----------------------------------------------------------------

constexpr uint64_t kHeapFlags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT;

TEST(LayoutBrk, GrowCreatesThenExpandsHeap) {
  Layout l;
  l.mmap(anon(0, 2, kRO));  // e.g. the program's data, right below start_brk
  l.set_brk(pg(2), pg(2));
  auto ch = l.brk(pg(3) + 16);  // first brk: new VMA (never merges below start_brk)
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kHeapFlags);
  EXPECT_EQ(l.brk(), pg(3) + 16);
  EXPECT_EQ(maps_name(l, *l.find(pg(2))), "[heap]");
  const uint64_t heap = l.find(pg(2))->id;
  ch = l.brk(pg(6));  // expand in place
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(2)), 2, 6, apg(2), kHeapFlags);
  EXPECT_EQ(l.find(pg(2))->id, heap);
  EXPECT_EQ(ch.merges, 0);
  ch = l.brk(pg(6) - 10);  // same page: nothing
  EXPECT_FALSE(ch.changed());
  EXPECT_EQ(l.brk(), pg(6) - 10);
}

TEST(LayoutBrk, NewHeapDoesNotMergeWithCompatibleVmaBelowStartBrk) {
  // A rw anon VMA ends exactly at start_brk (no randomisation): do_brk_flags()
  // gets brkvma = NULL and creates a new VMA.
  Layout l;
  l.mmap(anon(0, 2, kHeapFlags));
  l.set_brk(pg(2), pg(2));
  l.brk(pg(4));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(maps_name(l, *l.find(pg(0))), "");
  EXPECT_EQ(maps_name(l, *l.find(pg(2))), "[heap]");
}

TEST(LayoutBrk, DoesNotExpandHeapWithDifferentFlags) {
  Layout l;
  l.set_brk(pg(0), pg(0));
  l.brk(pg(2));
  l.mprotect(pg(0), 2 * P, abi::kProtRead);
  l.brk(pg(4));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kHeapFlags);
  EXPECT_EQ(maps_name(l, *l.find(pg(0))), "[heap]");
  EXPECT_EQ(maps_name(l, *l.find(pg(2))), "[heap]");
}

TEST(LayoutBrk, ShrinkAndNaming) {
  Layout l;
  l.set_brk(pg(0), pg(0));
  l.brk(pg(8));
  auto ch = l.brk(pg(3) + 1);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(0)), 0, 4, apg(0), kHeapFlags);
  ASSERT_EQ(ch.removed.size(), 1u);
  EXPECT_EQ(ch.removed[0].start, pg(4));
  ch = l.brk(pg(0));  // back to start_brk: heap VMA gone, nothing named [heap]
  EXPECT_EQ(l.size(), 0u);
  EXPECT_FALSE(l.brk(pg(0) - P).changed());  // below start_brk: refused
}

TEST(LayoutBrk, RefusedNearNextMappingAndStackGap) {
  Layout l;
  l.set_brk(pg(0), pg(0));
  l.mmap(anon(5, 6));
  EXPECT_FALSE(l.brk(pg(5)).changed());  // would leave no page before the next VMA
  EXPECT_EQ(l.brk(), pg(0));
  EXPECT_TRUE(l.brk(pg(4)).changed());
  Layout s;
  s.set_brk(pg(0), pg(0));
  s.mmap(anon(300, 310, kRW | VM_GROWSDOWN));
  EXPECT_FALSE(s.brk(pg(50)).changed());  // within stack_guard_gap of a stack
  EXPECT_TRUE(s.brk(pg(40)).changed());
}

// ---- stack growth -------------------------------------------------------

TEST(LayoutFault, ExpandsStackDownwards) {
  //  ........SSSS  fault 3 pages below -> .....SSSSSSS, pgoff decreases
  Layout l;
  Vma s = anon(1000, 1004, kStack);
  l.seed({s});
  const uint64_t id = l.vmas()[0].id;
  auto ch = l.fault(pg(997) + 123);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_VMA(l.find(pg(997)), 997, 1004, apg(1000) - 3, kStack);
  EXPECT_EQ(l.find(pg(997))->id, id);
  ASSERT_EQ(ch.result.size(), 1u);
}

TEST(LayoutFault, GuardGapRefusal) {
  // accessible VMA 200 pages below the new start: inside the 256-page gap
  Layout l;
  l.seed({anon(0, 10), anon(1000, 1004, kStack)});
  EXPECT_FALSE(l.fault(pg(210)).changed());
  EXPECT_TRUE(l.fault(pg(266)).changed());  // exactly 256 pages above prev's end
  EXPECT_VMA(l.find(pg(266)), 266, 1004, apg(1000) - (1000 - 266), kStack);
  // A PROT_NONE neighbour does not enforce the gap.
  Layout k;
  k.seed({anon(0, 10, kNone), anon(1000, 1004, kStack)});
  EXPECT_TRUE(k.fault(pg(10)).changed());
  EXPECT_VMA(k.find(pg(10)), 10, 1004, apg(1000) - 990, kStack);
}

TEST(LayoutFault, NoGrowthWithoutGrowsDownOrInsideVma) {
  Layout l;
  l.seed({anon(1000, 1004)});
  EXPECT_FALSE(l.fault(pg(999)).changed());
  EXPECT_FALSE(l.fault(pg(1001)).changed());
  EXPECT_FALSE(l.fault(pg(1005)).changed());
  EXPECT_EQ(l.size(), 1u);
}

TEST(LayoutFault, StackRlimit) {
  Layout l;
  l.set_stack_rlimit(8 * P);
  l.seed({anon(1000, 1004, kStack)});
  EXPECT_FALSE(l.fault(pg(995)).changed());
  EXPECT_TRUE(l.fault(pg(996)).changed());
}

// ---- naming ---------------------------------------------------------------

TEST(LayoutNames, HeapStackDeletedSpecial) {
  Layout l;
  Vma f = file(0, 1, 0);
  f.deleted = true;
  Vma vdso = anon(10, 12, VM_READ | VM_EXEC | kMay | VM_DONTEXPAND);
  vdso.special = "[vdso]";
  Vma named = anon(20, 21);
  named.anon_name = "buf";
  Vma nl = file(30, 31, 0);
  nl.path = "/tmp/a\nb";
  l.seed({f, anon(2, 4), vdso, named, nl, anon(100, 104, kStack)});
  l.set_brk(pg(2), pg(3) + 5);
  l.set_start_stack(pg(103) + 0x10);
  EXPECT_EQ(maps_name(l, *l.find(pg(0))), "/lib/libx.so (deleted)");
  EXPECT_EQ(maps_name(l, *l.find(pg(2))), "[heap]");
  EXPECT_EQ(maps_name(l, *l.find(pg(10))), "[vdso]");
  EXPECT_EQ(maps_name(l, *l.find(pg(20))), "[anon:buf]");
  EXPECT_EQ(maps_name(l, *l.find(pg(30))), "/tmp/a\\012b");
  EXPECT_EQ(maps_name(l, *l.find(pg(100))), "[stack]");
  // 6.18 vma_is_initial_heap(): a VMA ending exactly at start_brk is not the heap.
  l.set_brk(pg(4), pg(4));
  EXPECT_EQ(maps_name(l, *l.find(pg(2))), "");
}

// ---- reconcile, ids, fork ---------------------------------------------------

TEST(LayoutReconcile, SplitsAModelMergeTheKernelRefused) {
  // The model merged A and B (it cannot see anon_vma); the kernel kept B apart.
  Layout l;
  l.mmap(anon(0, 2));
  const uint64_t a = l.find(pg(0))->id;
  l.mmap(anon(2, 4));
  EXPECT_EQ(l.size(), 1u);
  auto ch = l.reconcile(anon(2, 4));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_VMA(l.find(pg(0)), 0, 2, apg(0), kRW);
  EXPECT_VMA(l.find(pg(2)), 2, 4, apg(2), kRW);
  EXPECT_EQ(l.find(pg(0))->id, a);
  EXPECT_NE(l.find(pg(2))->id, a);
  EXPECT_EQ(ch.splits, 1);
}

TEST(LayoutReconcile, ReplacesOverlapsAndKeepsIdAtStart) {
  // AA BB CC, kernel says [2, 5) is one ---p VMA -> AA BBB C
  Layout l;
  l.seed({anon(0, 2), anon(2, 4, kRO), anon(4, 6)});
  const uint64_t b = l.find(pg(2))->id;
  l.reconcile(anon(2, 5, kNone));
  EXPECT_EQ(l.size(), 3u);
  EXPECT_VMA(l.find(pg(2)), 2, 5, apg(2), kNone);
  EXPECT_EQ(l.find(pg(2))->id, b);
  EXPECT_VMA(l.find(pg(5)), 5, 6, apg(5), kRW);
  EXPECT_FALSE(l.reconcile(anon(2, 5, kNone)).changed());  // already agrees
}

TEST(LayoutReconcile, RangeRemovesWhatTheKernelDoesNotHave) {
  Layout l;
  l.seed({anon(0, 2), anon(3, 5), anon(6, 8)});
  l.reconcile_range(pg(0), pg(10), {anon(0, 2), anon(6, 9, kRO)});
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.find(pg(3)), nullptr);
  EXPECT_VMA(l.find(pg(6)), 6, 9, apg(6), kRO);
}

TEST(LayoutIds, NeverReused) {
  Layout l;
  l.mmap(anon(0, 4));
  std::set<uint64_t> seen;
  for (int i = 0; i < 3; i++) {
    l.mprotect(pg(1), P, abi::kProtRead);
    l.mprotect(pg(1), P, abi::kProtRead | abi::kProtWrite);
    for (const auto& v : l.vmas()) seen.insert(v.id);
  }
  l.munmap(pg(1), P);
  for (const auto& v : l.vmas()) {
    if (v.start == pg(2)) {
      EXPECT_EQ(seen.count(v.id), 0u);
    }
  }
}

TEST(LayoutFork, SkipsDontCopyAndDropsLocks) {
  Layout parent;
  parent.seed({anon(0, 2, kRW | VM_DONTCOPY), anon(2, 4, kRW | VM_LOCKED), anon(4, 6, kRW | VM_WIPEONFORK)});
  parent.set_brk(pg(10), pg(12));
  parent.set_start_stack(pg(100));
  Layout child;
  child.fork_from(parent);
  EXPECT_EQ(child.size(), 2u);
  EXPECT_EQ(child.find(pg(0)), nullptr);
  EXPECT_VMA(child.find(pg(2)), 2, 4, apg(2), kRW);
  EXPECT_VMA(child.find(pg(4)), 4, 6, apg(4), kRW | VM_WIPEONFORK);
  EXPECT_EQ(child.find(pg(2))->id, parent.find(pg(2))->id);
  EXPECT_EQ(child.brk(), pg(12));
  EXPECT_EQ(child.start_stack(), pg(100));
  // Independent afterwards; ids keep counting from the parent's.
  child.mmap(anon(20, 21));
  EXPECT_EQ(parent.size(), 3u);
  EXPECT_GE(child.find(pg(20))->id, parent.next_id());
}

TEST(LayoutSeed, RejectsOverlapAndSortsInput) {
  Layout l;
  EXPECT_THROW(l.seed({anon(0, 4), anon(2, 6)}), std::invalid_argument);
  l.seed({anon(4, 6), anon(0, 2)});
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l.vmas()[0].start, pg(0));
  EXPECT_EQ(l.overlapping(pg(1), pg(5)).size(), 2u);
  EXPECT_EQ(l.overlapping(pg(2), pg(4)).size(), 0u);
}

}  // namespace
}  // namespace vmatrace
