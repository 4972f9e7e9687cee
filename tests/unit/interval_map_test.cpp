// carve_out (util/interval_map.h) against a page-by-page model: random
// carves and inserts over a small address range keep the map disjoint and
// equal to the pages it should hold.

#include "util/interval_map.h"

#include <gtest/gtest.h>

#include <array>
#include <random>

namespace {

struct Span {
  uint64_t end = 0;
  int label = 0;
};

}  // namespace

TEST(IntervalMap, CarveOutAgreesWithAPageModel) {
  constexpr int kPages = 64;
  std::map<uint64_t, Span> m;
  std::array<int, kPages> want{};  // 0: nothing there
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; step++) {
    uint64_t a = rng() % kPages, b = rng() % (kPages + 1);
    if (a > b) std::swap(a, b);
    const bool insert = rng() % 2;
    const int label = static_cast<int>(rng() % 5) + 1;
    auto next = vmatrace::carve_out(m, a, b, [](Span& r) -> uint64_t& { return r.end; });
    if (insert && a < b) m.emplace_hint(next, a, Span{b, label});
    for (uint64_t p = a; p < b; p++) want[p] = insert ? label : 0;
    std::array<int, kPages> got{};
    uint64_t last_end = 0;
    for (const auto& [start, run] : m) {
      ASSERT_LT(start, run.end) << "empty run at step " << step;
      ASSERT_LE(last_end, start) << "overlap at step " << step;
      last_end = run.end;
      for (uint64_t p = start; p < run.end; p++) got[p] = run.label;
    }
    ASSERT_EQ(got, want) << "step " << step;
  }
}
