// The frontend's cost per event (issue #16): interned VMA names, the
// Layout's file generation (what the unwinder cache keys on), and the
// change derivation over a range of thousands of VMAs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/interned.h"
#include "core/kernel_view.h"
#include "core/layout.h"
#include "core/vma_changes.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using test::kRO;
using test::kRW;
using test::P;

constexpr uint64_t kBase = 0x100000000ull;

Vma anon(uint64_t page, uint64_t flags) {
  Vma v;
  v.start = kBase + page * P;
  v.end = v.start + P;
  v.flags = flags;
  v.pgoff = v.start / P;
  return v;
}

TEST(InternedString, EqualStringsShareOneCopy) {
  InternedString a(std::string("/usr/lib/libc.so.6"));
  InternedString b("/usr/lib/libc.so.6");
  EXPECT_EQ(a, b);
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_EQ(a, "/usr/lib/libc.so.6");
  EXPECT_EQ(a, std::string("/usr/lib/libc.so.6"));
  EXPECT_NE(a, InternedString("/usr/lib/libm.so.6"));
  InternedString e;
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e, "");
  EXPECT_EQ(InternedString(""), e);
  EXPECT_EQ(a + " (deleted)", "/usr/lib/libc.so.6 (deleted)");
}

TEST(VmaSize, CopiesNoStringAndFitsTheBudget) {
  // 80 bytes: a std::map node of (start, Vma) is then 120 bytes, 128 with
  // malloc's header (issue #16: at most 128 heap bytes per VMA).
  EXPECT_LE(sizeof(Vma), 80u);
  Vma v = anon(0, kRW);
  v.path = "/tmp/x";
  Vma c = v;
  EXPECT_EQ(&c.path.str(), &v.path.str());
}

TEST(LayoutFileGeneration, ChangesWithFileMappingsOnly) {
  Layout l;
  std::vector<Vma> seed;
  for (uint64_t i = 0; i < 8; i++) seed.push_back(anon(i, (i & 1) ? kRW : kRO));
  Vma f = anon(20, kRO | VM_EXEC);
  f.path = "/usr/lib/libfoo.so";
  f.ino = 7;
  f.pgoff = 0;
  seed.push_back(f);
  l.seed(seed);
  const uint64_t g0 = l.file_generation();
  // Anonymous merges and splits leave it alone.
  l.mprotect(kBase + 3 * P, P, 1);  // PROT_READ: merges pages 2..4
  l.mprotect(kBase + 3 * P, P, 3);  // and back
  l.munmap(kBase + 6 * P, P);
  EXPECT_EQ(l.file_generation(), g0);
  // A file VMA split by mprotect changes it.
  Vma g = anon(30, kRO);
  g.path = "/usr/lib/libbar.so";
  g.ino = 8;
  g.pgoff = 0;
  g.end = g.start + 4 * P;
  l.mmap(g);
  const uint64_t g1 = l.file_generation();
  EXPECT_NE(g1, g0);
  l.mprotect(g.start + P, P, 3);
  EXPECT_NE(l.file_generation(), g1);
  // Another layout never repeats a generation.
  Layout other;
  other.seed(seed);
  EXPECT_NE(other.file_generation(), l.file_generation());
}

TEST(KernelAfter, ThousandsOfVmasRemovedAtOnce) {
  // munmap() of a region of 20,000 one-page VMAs: the stores clear it all.
  std::vector<Vma> before;
  for (uint64_t i = 0; i < 20000; i++) before.push_back(anon(i, (i & 1) ? kRW : kRO));
  Layout after;  // the model after the munmap: empty
  std::vector<std::pair<uint64_t, uint64_t>> cleared{{kBase, kBase + 20000 * P}};
  auto k = kernel_after(before, {}, cleared, after);
  EXPECT_TRUE(k.vmas.empty());
  auto ch = derive_vma_changes(before, {}, VmaChangeHints{});
  ASSERT_EQ(ch.size(), 20000u);
  for (const auto& c : ch) EXPECT_EQ(c.kind, VmaChangeKind::kRemove);
}

TEST(KernelAfter, StoreInsideAVmaSplitsItAroundTheStore) {
  std::vector<Vma> before{anon(0, kRW)};
  before[0].end = before[0].start + 4 * P;
  Layout model;
  std::vector<Vma> now{before[0]};
  now[0].end = now[0].start + P;
  Vma mid = before[0];
  mid.start += P;
  mid.end = mid.start + P;
  mid.flags = kRO;
  mid.pgoff += 1;
  Vma tail = before[0];
  tail.start += 2 * P;
  tail.pgoff += 2;
  now.push_back(mid);
  now.push_back(tail);
  model.seed(now);
  KernelStore st;
  st.start = mid.start;
  st.end = mid.end;
  st.key = 42;
  st.info.start = mid.start;
  st.info.end = mid.end;
  st.info.flags = kRO;
  st.info.pgoff = mid.pgoff;
  st.info.state = VMAT_VMA_VALID;
  auto k = kernel_after(before, {st}, {}, model);
  ASSERT_EQ(k.vmas.size(), 3u);
  EXPECT_EQ(k.vmas[0].end, mid.start);
  EXPECT_EQ(k.vmas[1].start, mid.start);
  EXPECT_EQ(k.vmas[1].end, mid.end);
  EXPECT_EQ(k.vmas[2].start, mid.end);
  EXPECT_EQ(k.disagreements, 0);
}

}  // namespace
}  // namespace vmatrace
