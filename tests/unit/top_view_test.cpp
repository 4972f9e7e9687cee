// The live view's pieces without a terminal: TopView's frame and the rows
// it shows (what the lineage key picks from), the LineageLog both `top` and
// `replay --lineage` use, and the /proc/PID/pagemap words of the pre-6.7
// residency scan.

#include <gtest/gtest.h>

#include "pipeline/pipeline.h"
#include "report/lineage.h"
#include "report/top_view.h"
#include "support/records.h"
#include "trace/rss_scanner.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::records;

constexpr uint64_t kP = 4096;
constexpr uint64_t kBase = 0x10000000;

std::vector<std::byte> munmap_rec(uint32_t pid, uint64_t ts, uint64_t addr, uint64_t len) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, "t");
  e.sys = VMAT_SYS_MUNMAP;
  e.ret = 0;
  e.args[0] = addr;
  e.args[1] = len;
  return bytes_of(e);
}

bool has(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}

TEST(TopView, FrameListsTheVmasItShowsAndLineageTellsTheirHistory) {
  Pipeline p;
  p.enable_rss();
  TopView view(p.processor(), p.rss(), 1'000'000'000);
  LineageLog lineage;
  p.add_sink(&view);
  p.add_sink(&lineage);
  const uint32_t pid = 7;
  ASSERT_TRUE(p.feed(layout_rec(pid, 1'000'000'000, {anon(kBase, kBase + 16 * kP)})));
  // A new mapping of 64 pages away from the first, then a hole punched in it.
  const uint64_t m = kBase + 256 * kP;
  ASSERT_TRUE(p.feed(bytes_of(mmap_event(pid, 1'100'000'000, m, 64 * kP))));
  ASSERT_TRUE(p.feed(munmap_rec(pid, 1'200'000'000, m + 16 * kP, 16 * kP)));

  const std::string f = view.frame(pid, 1'300'000'000, 120, 40, TopSort::kSize, nullptr, "status");
  EXPECT_NE(f.find("VMAs 3"), std::string::npos) << f;
  // Sorted by size: the upper piece (32 pages), the first VMA and the lower piece (16 each).
  ASSERT_EQ(view.shown_vmas().size(), 3u) << f;
  EXPECT_EQ(view.shown_vmas()[0], m + 32 * kP);
  // The line the first row is on shows that VMA.
  size_t at = 0;
  for (size_t i = 0; i < view.first_vma_line(); i++) at = f.find('\n', at) + 1;
  EXPECT_NE(f.substr(at, f.find('\n', at) - at).find("0000000010120000"), std::string::npos) << f;

  const ProcessState* st = p.processor().process(pid);
  ASSERT_TRUE(st);
  const auto upper = lineage.lines(pid, st->layout, st->comm, m + 40 * kP, 1'000'000'000);
  ASSERT_GE(upper.size(), 3u);
  EXPECT_EQ(upper[0].rfind("# lineage of 10128000 in 7 (t): ", 0), 0u) << upper[0];
  EXPECT_TRUE(has(upper, "+0.100000s 7 mmap")) << upper[1];
  EXPECT_TRUE(has(upper, "+0.200000s 7 munmap")) << upper[2];
  // The first VMA was there from the start.
  const auto first = lineage.lines(pid, st->layout, st->comm, kBase, 1'000'000'000);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first[1].find("no change recorded"), std::string::npos) << first[1];
  EXPECT_TRUE(lineage.lines(pid, st->layout, st->comm, m + 20 * kP, 0).empty()) << "no VMA in the hole";
}

TEST(TopView, LiveLineageKeepsTheLastChangesAndSaysSo) {
  Pipeline p;
  LineageLog lineage(2);
  p.add_sink(&lineage);
  const uint32_t pid = 9;
  ASSERT_TRUE(p.feed(layout_rec(pid, 1, {anon(kBase, kBase + 16 * kP)})));
  for (uint64_t i = 0; i < 4; i++)
    ASSERT_TRUE(p.feed(bytes_of(mmap_event(pid, 2 + i, kBase + (64 + 64 * i) * kP, kP))));
  EXPECT_TRUE(lineage.truncated(pid));
  const ProcessState* st = p.processor().process(pid);
  ASSERT_TRUE(st);
  const auto lines = lineage.lines(pid, st->layout, st->comm, kBase + 256 * kP, 0);
  EXPECT_TRUE(has(lines, "older changes of this process were dropped"));
}

TEST(TopView, ProcessWithoutLayoutShowsNoRows) {
  Pipeline p;
  TopView view(p.processor(), nullptr, 0);
  p.add_sink(&view);
  const std::string f = view.frame(123, 5, 80, 20, TopSort::kGrowth, nullptr, "");
  EXPECT_NE(f.find("pid 123: no layout yet"), std::string::npos) << f;
  EXPECT_TRUE(view.shown_vmas().empty());
}

// /proc/PID/pagemap words (bit 63 present, 62 swapped, 61 file or shared
// anonymous, 0-54 the frame) into the scan record's runs.
TEST(PagemapRead, WordsBecomeRunsWithoutTheZeroPages) {
  constexpr uint64_t kPresent = uint64_t{1} << 63, kSwapped = uint64_t{1} << 62, kFile = uint64_t{1} << 61;
  const uint64_t zero = 0x1234, huge_zero = 0x40000;
  const std::vector<uint64_t> words = {
      kPresent | 100,              // anonymous
      kPresent | 101,              // anonymous: joins the run
      kPresent | kFile | 7,        // page cache
      0,                           // not mapped
      kPresent | zero,             // the zero page: not resident for smaps
      kPresent | (huge_zero + 3),  // inside the huge zero page
      kSwapped | 0x55,             // swap entry (offset in the low bits)
      kSwapped | kFile | 1,        // swapped shmem
      kPresent | kFile | 8,
  };
  std::vector<vmat_rss_run> runs;
  pagemap_words_to_runs(kBase, words, zero, huge_zero, runs);
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].start, kBase);
  EXPECT_EQ(runs[0].end, kBase + 2 * kP);
  EXPECT_EQ(runs[0].flags, uint64_t{VMAT_RSS_PRESENT});
  EXPECT_EQ(runs[1].start, kBase + 2 * kP);
  EXPECT_EQ(runs[1].flags, uint64_t{VMAT_RSS_PRESENT | VMAT_RSS_FILE});
  EXPECT_EQ(runs[2].start, kBase + 6 * kP);
  EXPECT_EQ(runs[2].flags, uint64_t{VMAT_RSS_SWAPPED});
  EXPECT_EQ(runs[3].flags, uint64_t{VMAT_RSS_SWAPPED | VMAT_RSS_FILE});
  EXPECT_EQ(runs[4].start, kBase + 8 * kP);
  EXPECT_EQ(runs[4].end, kBase + 9 * kP);
  // Unknown zero frames (0): a present page is resident whatever its frame.
  runs.clear();
  pagemap_words_to_runs(kBase, std::span<const uint64_t>(words).subspan(4, 1), 0, 0, runs);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].flags, uint64_t{VMAT_RSS_PRESENT});
}

}  // namespace
}  // namespace vmatrace
