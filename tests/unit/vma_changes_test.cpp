// VMA change derivation (core/vma_changes.h), kernel tools/testing/vma
// style: each case one rule, the layout drawn one character per page; each
// checks the kinds in order, the ranges and the ids.

#include <gtest/gtest.h>

#include <functional>

#include "core/layout.h"
#include "core/vm_flags.h"
#include "core/vma_changes.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::pages;

// Applies op to l and derives its changes from the whole layout before and after.
std::vector<VmaChange> run(Layout& l, const std::function<void()>& op, VmaChangeHints h = {}) {
  auto before = l.vmas();
  op();
  return derive_vma_changes(before, l.vmas(), h);
}

std::string kinds(const std::vector<VmaChange>& ch) {
  std::string s;
  for (const auto& c : ch) s += (s.empty() ? "" : " ") + std::string(vma_change_kind_name(c.kind));
  return s;
}

#define EXPECT_RANGE(v, s, e)    \
  do {                           \
    EXPECT_EQ((v).start, pg(s)); \
    EXPECT_EQ((v).end, pg(e));   \
  } while (0)

VmaChangeHints mmap_hints(uint64_t s, uint64_t e) {
  VmaChangeHints h;
  h.new_range_merges = true;
  h.replaced_start = pg(s), h.replaced_end = pg(e);
  return h;
}

TEST(VmaChanges, MmapIntoNothingIsNew) {
  // ....  ->  AA..
  Layout l;
  auto ch = run(
      l, [&] { l.mmap(anon(0, 2)); }, mmap_hints(0, 2));
  ASSERT_EQ(kinds(ch), "vma_new");
  ASSERT_EQ(ch[0].to.size(), 1u);
  EXPECT_RANGE(ch[0].to[0], 0, 2);
  EXPECT_NE(ch[0].to[0].id, 0u);
}

TEST(VmaChanges, MmapNextToPrevMergesTheNewRange) {
  // AAA.  ->  AAAA (vma_merge_new_range() expands prev)
  Layout l;
  l.mmap(anon(0, 3));
  const uint64_t id = l.vmas()[0].id;
  auto ch = run(
      l, [&] { l.mmap(anon(3, 4)); }, mmap_hints(3, 4));
  ASSERT_EQ(kinds(ch), "vma_merge");
  ASSERT_EQ(ch[0].from.size(), 2u);
  EXPECT_RANGE(ch[0].from[0], 0, 3);
  EXPECT_EQ(ch[0].from[0].id, id);
  EXPECT_RANGE(ch[0].from[1], 3, 4);
  EXPECT_EQ(ch[0].from[1].id, 0u);  // the new range never was a VMA
  ASSERT_EQ(ch[0].to.size(), 1u);
  EXPECT_RANGE(ch[0].to[0], 0, 4);
  EXPECT_EQ(ch[0].to[0].id, id);
}

TEST(VmaChanges, MmapBetweenTwoMergesAllThree) {
  // AA.BB  ->  AAAAA
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(3, 5, kRO));
  l.mprotect(pg(3), 2 * P, 3);  // now rw but a separate VMA
  ASSERT_EQ(l.size(), 2u);
  auto ch = run(
      l, [&] { l.mmap(anon(2, 3)); }, mmap_hints(2, 3));
  ASSERT_EQ(kinds(ch), "vma_merge");
  ASSERT_EQ(ch[0].from.size(), 3u);
  EXPECT_RANGE(ch[0].from[1], 2, 3);
  EXPECT_RANGE(ch[0].to[0], 0, 5);
}

TEST(VmaChanges, MprotectMiddleSplitsInThree) {
  // AAA -> A B A: one __split_vma() pair, pieces shown as they ended up
  Layout l;
  l.mmap(anon(0, 3));
  const uint64_t id = l.vmas()[0].id;
  auto ch = run(l, [&] { l.mprotect(pg(1), P, 1); });
  ASSERT_EQ(kinds(ch), "vma_split");
  ASSERT_EQ(ch[0].from.size(), 1u);
  EXPECT_EQ(ch[0].from[0].id, id);
  ASSERT_EQ(ch[0].to.size(), 3u);
  EXPECT_RANGE(ch[0].to[0], 0, 1);
  EXPECT_EQ(ch[0].to[0].id, id);
  EXPECT_RANGE(ch[0].to[1], 1, 2);
  EXPECT_EQ(ch[0].to[1].perms(), "r--p");
  EXPECT_RANGE(ch[0].to[2], 2, 3);
  EXPECT_EQ(ch[0].to[2].perms(), "rw-p");
  // ...and back: vma_merge_existing_range() joins all three.
  ch = run(l, [&] { l.mprotect(pg(1), P, 3); });
  ASSERT_EQ(kinds(ch), "vma_merge");
  EXPECT_EQ(ch[0].from.size(), 3u);
  ASSERT_EQ(ch[0].to.size(), 1u);
  EXPECT_RANGE(ch[0].to[0], 0, 3);
  EXPECT_EQ(ch[0].to[0].id, id);
}

TEST(VmaChanges, MprotectWholeVmaChangesFlagsInPlace) {
  Layout l;
  l.mmap(anon(0, 3));
  auto ch = run(l, [&] { l.mprotect(pg(0), 3 * P, 1); });
  ASSERT_EQ(kinds(ch), "vma_flags");
  EXPECT_EQ(ch[0].from[0].perms(), "rw-p");
  EXPECT_EQ(ch[0].to[0].perms(), "r--p");
  EXPECT_EQ(ch[0].from[0].id, ch[0].to[0].id);
}

TEST(VmaChanges, MunmapMiddleSplitsThenRemoves) {
  // AAA -> A.A
  Layout l;
  l.mmap(anon(0, 3));
  VmaChangeHints h;
  h.replaced_start = pg(1), h.replaced_end = pg(2);
  auto ch = run(
      l, [&] { l.munmap(pg(1), P); }, h);
  ASSERT_EQ(kinds(ch), "vma_split vma_remove");
  ASSERT_EQ(ch[0].to.size(), 3u);
  ASSERT_EQ(ch[1].from.size(), 1u);
  EXPECT_RANGE(ch[1].from[0], 1, 2);
}

TEST(VmaChanges, MunmapWholeRemoves) {
  Layout l;
  l.mmap(anon(0, 3));
  l.mmap(anon(5, 6));
  VmaChangeHints h;
  h.replaced_start = pg(0), h.replaced_end = pg(3);
  auto ch = run(
      l, [&] { l.munmap(pg(0), 3 * P); }, h);
  ASSERT_EQ(kinds(ch), "vma_remove");
  EXPECT_RANGE(ch[0].from[0], 0, 3);
}

TEST(VmaChanges, MmapFixedOverMiddleSplitsRemovesAndMapsNew) {
  // AAA -> ABA with B incompatible: split, the middle goes, a new VMA comes
  Layout l;
  l.mmap(anon(0, 3));
  Vma b = anon(1, 2, kRO);
  auto ch = run(
      l, [&] { l.mmap(b); }, mmap_hints(1, 2));
  ASSERT_EQ(kinds(ch), "vma_split vma_remove vma_new");
  EXPECT_RANGE(ch[2].to[0], 1, 2);
  EXPECT_EQ(ch[2].to[0].perms(), "r--p");
}

TEST(VmaChanges, BrkExpandsAndShrinksTheHeap) {
  Layout l;
  l.mmap(anon(0, 2, kRO));
  l.set_brk(pg(2), pg(2));
  VmaChangeHints h;
  h.in_place_resize = true;
  auto ch = run(
      l, [&] { l.brk(pg(3)); }, h);
  ASSERT_EQ(kinds(ch), "vma_new");
  ch = run(
      l, [&] { l.brk(pg(6)); }, h);
  ASSERT_EQ(kinds(ch), "vma_expand");
  EXPECT_RANGE(ch[0].from[0], 2, 3);
  EXPECT_RANGE(ch[0].to[0], 2, 6);
  EXPECT_EQ(ch[0].from[0].id, ch[0].to[0].id);
  ch = run(
      l, [&] { l.brk(pg(4)); }, h);
  ASSERT_EQ(kinds(ch), "vma_shrink");
  EXPECT_RANGE(ch[0].to[0], 2, 4);
}

TEST(VmaChanges, StackGrowthExpands) {
  Layout l;
  l.seed({anon(1000, 1004, kStack)});
  VmaChangeHints h;
  h.in_place_resize = true;
  auto ch = run(
      l, [&] { l.fault(pg(997) + 5); }, h);
  ASSERT_EQ(kinds(ch), "vma_expand");
  EXPECT_RANGE(ch[0].from[0], 1000, 1004);
  EXPECT_RANGE(ch[0].to[0], 997, 1004);
}

TEST(VmaChanges, MremapMoveKeepsTheVma) {
  // AA...... -> ......AA (MREMAP_MAYMOVE|MREMAP_FIXED)
  Layout l;
  l.mmap(anon(0, 2));
  const uint64_t id = l.vmas()[0].id;
  VmaChangeHints h;
  h.new_range_merges = true;
  auto ch = run(
      l, [&] { l.mremap(pg(0), 2 * P, 2 * P, 1 | 2, pg(6)); }, h);
  ASSERT_EQ(kinds(ch), "vma_move");
  EXPECT_EQ(ch[0].from[0].id, id);
  EXPECT_RANGE(ch[0].to[0], 6, 8);
}

TEST(VmaChanges, UnchangedVmasAreLeftOut) {
  Layout l;
  l.mmap(anon(0, 2));
  l.mmap(anon(4, 5));
  auto before = l.vmas();
  EXPECT_TRUE(derive_vma_changes(before, before).empty());
  l.fault(pg(0));  // anon_vma belief only: not a visible change
  EXPECT_TRUE(derive_vma_changes(before, l.vmas()).empty());
}

}  // namespace
}  // namespace vmatrace
