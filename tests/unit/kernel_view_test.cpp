// The kernel's view of one operation (core/kernel_view.h): the stores the
// vma family recorded, laid over the VMAs from before, in the style of
// vma_changes_test.cpp (one character per page in the drawings).

#include <gtest/gtest.h>

#include "core/kernel_view.h"
#include "core/layout.h"
#include "core/vm_flags.h"
#include "core/vma_changes.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::pages;

// A store of VMA `key` over pages [s, e) (the VMA itself spanning [vs, ve)).
KernelStore store(uint64_t key, uint64_t s, uint64_t e, uint64_t vs, uint64_t ve) {
  KernelStore k;
  k.start = pg(s);
  k.end = pg(e);
  k.key = key;
  k.info.start = pg(vs);
  k.info.end = pg(ve);
  k.info.flags = kRW;
  k.info.pgoff = pg(vs) / P;
  k.info.state = VMAT_VMA_VALID;
  return k;
}

std::string ranges(const std::vector<Vma>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : " ") + std::to_string((x.start - kBase) / P) + "-" + std::to_string((x.end - kBase) / P);
  return s;
}

TEST(KernelView, StoreFromTheRecordMakesLastExclusive) {
  vmat_vma_kernel_event e{};
  e.hdr.ts = 7;
  e.index = pg(1);
  e.last = pg(3) - 1;
  e.vma_key = 42;
  auto k = kernel_store_from(e);
  EXPECT_EQ(k.start, pg(1));
  EXPECT_EQ(k.end, pg(3));
  EXPECT_EQ(k.key, 42u);
  EXPECT_EQ(k.ts, 7u);
  EXPECT_EQ(vma_change_source_of(VMAT_VMAK_MAPLE_TREE), VmaChangeSource::kMapleTree);
  EXPECT_STREQ(vma_change_source_name(VmaChangeSource::kFentry), "fentry");
}

TEST(KernelView, PrevExpandedOverTheNewRangeIsAMerge) {
  // AAA.  + store A over AAAA  ->  one VMA, the model's, merged from A and the new range
  Layout l;
  l.mmap(anon(0, 3));
  auto before = l.vmas();
  l.mmap(anon(3, 4));
  auto k = kernel_after(before, {store(0xa, 0, 4, 0, 4)}, {}, l);
  EXPECT_EQ(k.disagreements, 0);
  ASSERT_EQ(ranges(k.vmas), "0-4");
  EXPECT_EQ(k.vmas[0].id, l.vmas()[0].id);
  VmaChangeHints h;
  h.new_range_merges = true;
  h.replaced_start = pg(3), h.replaced_end = pg(4);
  auto ch = derive_vma_changes(before, k.vmas, h);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].kind, VmaChangeKind::kMerge);
  EXPECT_EQ(ch[0].from.size(), 2u);
}

TEST(KernelView, SplitPiecesStoredOneByOne) {
  // AAAAAA, mprotect of pages 2-3: __split_vma() stores B over 2-5, then C over 4-5
  Layout l;
  l.mmap(anon(0, 6));
  auto before = l.vmas();
  l.mprotect(pg(2), 2 * P, 1);
  auto k = kernel_after(before, {store(0xb, 2, 6, 2, 6), store(0xc, 4, 6, 4, 6)}, {}, l);
  EXPECT_EQ(k.disagreements, 0);
  EXPECT_EQ(ranges(k.vmas), "0-2 2-4 4-6");
  EXPECT_EQ(k.vmas[1].flags & VM_WRITE, 0u) << "flags set after the store come from the model";
  auto ch = derive_vma_changes(before, k.vmas, {});
  ASSERT_FALSE(ch.empty());
  EXPECT_EQ(ch[0].kind, VmaChangeKind::kSplit);
  EXPECT_EQ(ch[0].to.size(), 3u);
}

TEST(KernelView, UnreportedMunmapClearingIsApplied) {
  // AAAAAA, munmap 2-3: the split stores B over 2-5, then B's first half goes unreported
  Layout l;
  l.mmap(anon(0, 6));
  auto before = l.vmas();
  l.munmap(pg(2), 2 * P);
  auto k = kernel_after(before, {store(0xb, 2, 6, 2, 6), store(0xc, 4, 6, 4, 6)}, {{pg(2), pg(4)}}, l);
  EXPECT_EQ(k.disagreements, 0);
  EXPECT_EQ(ranges(k.vmas), "0-2 4-6");
}

TEST(KernelView, ClearingStoreRemoves) {
  Layout l;
  l.mmap(anon(0, 2));
  auto before = l.vmas();
  l.munmap(pg(0), 2 * P);
  auto k = kernel_after(before, {store(0, 0, 2, 0, 0)}, {}, l);
  EXPECT_EQ(k.disagreements, 0);
  EXPECT_TRUE(k.vmas.empty());
}

TEST(KernelView, KernelThatDidNotMergeWins) {
  // AAA. + a new VMA N stored over page 3 on its own (anon_vma mismatch):
  // the model merged, the kernel did not; the kernel's two VMAs are reported.
  Layout l;
  l.mmap(anon(0, 3));
  auto before = l.vmas();
  l.mmap(anon(3, 4));
  auto k = kernel_after(before, {store(0xe, 3, 4, 3, 4)}, {}, l);
  EXPECT_EQ(k.disagreements, 2);
  EXPECT_EQ(ranges(k.vmas), "0-3 3-4");
  EXPECT_EQ(k.vmas[1].id, 0u);
  EXPECT_EQ(k.vmas[1].pgoff, pg(3) / P);
}

TEST(KernelView, OneVmaStoredPiecewiseIsOneVma) {
  Layout l;
  auto before = l.vmas();
  l.mmap(anon(0, 4));
  auto k = kernel_after(before, {store(0xd, 0, 2, 0, 4), store(0xd, 2, 4, 0, 4)}, {}, l);
  EXPECT_EQ(k.disagreements, 0);
  EXPECT_EQ(ranges(k.vmas), "0-4");
}

}  // namespace
}  // namespace vmatrace
