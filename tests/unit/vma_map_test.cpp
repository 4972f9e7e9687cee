// ChunkedMap (the Layout's container) against std::map: the same random
// inserts, erases and searches must give the same answers, across chunk
// splits, thin-chunk joins and empty-chunk removal.

#include <gtest/gtest.h>

#include <iterator>
#include <map>
#include <random>
#include <vector>

#include "core/vma_map.h"

namespace vmatrace {
namespace {

struct Val {
  uint64_t v = 0;
};
using CMap = ChunkedMap<Val>;

void expect_same(CMap& c, const std::map<uint64_t, uint64_t>& m) {
  ASSERT_EQ(c.size(), m.size());
  auto it = c.begin();
  for (const auto& [k, v] : m) {
    ASSERT_TRUE(it != c.end());
    EXPECT_EQ(it->first, k);
    EXPECT_EQ(it->second.v, v);
    ++it;
  }
  EXPECT_TRUE(it == c.end());
  // Backwards too.
  auto rit = c.end();
  for (auto mit = m.rbegin(); mit != m.rend(); ++mit) {
    --rit;
    EXPECT_EQ(rit->first, mit->first);
  }
  EXPECT_TRUE(rit == c.begin());
}

void expect_searches(CMap& c, const std::map<uint64_t, uint64_t>& m, uint64_t key) {
  auto key_of = [&](CMap::iterator it) { return it == c.end() ? UINT64_MAX : it->first; };
  auto mkey = [&](std::map<uint64_t, uint64_t>::const_iterator it) { return it == m.end() ? UINT64_MAX : it->first; };
  EXPECT_EQ(key_of(c.upper_bound(key)), mkey(m.upper_bound(key))) << key;
  EXPECT_EQ(key_of(c.lower_bound(key)), mkey(m.lower_bound(key))) << key;
  EXPECT_EQ(key_of(c.find(key)), mkey(m.find(key))) << key;
  auto ub = m.upper_bound(key);
  const uint64_t want_floor = ub == m.begin() ? UINT64_MAX : std::prev(ub)->first;
  EXPECT_EQ(key_of(c.floor(key)), want_floor) << key;
  // From a remembered position, whatever happened since.
  static CMap::Pos hint;
  EXPECT_EQ(key_of(c.floor(key, hint)), want_floor) << key;
  EXPECT_EQ(key_of(c.floor(key + 1, hint)), key_of(c.floor(key + 1))) << key;
  EXPECT_EQ(key_of(c.floor(key > 40 ? key - 40 : 0, hint)), key_of(c.floor(key > 40 ? key - 40 : 0))) << key;
}

TEST(ChunkedMap, RandomOperationsMatchStdMap) {
  std::mt19937_64 rng(42);
  for (uint64_t range : {50ull, 400ull, 5000ull}) {
    CMap c;
    std::map<uint64_t, uint64_t> m;
    for (int step = 0; step < 20000; step++) {
      const uint64_t key = rng() % range;
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {
        static CMap::Pos hint;
        auto [it, ok] = (step & 1) ? c.emplace(key, Val{key * 3}, hint) : c.emplace(key, Val{key * 3});
        auto [mit, mok] = m.emplace(key, key * 3);
        ASSERT_EQ(ok, mok);
        ASSERT_EQ(it->first, key);
      } else if (op < 9 && !m.empty()) {
        auto mit = m.lower_bound(key);
        if (mit == m.end()) mit = m.begin();
        const uint64_t k = mit->first;
        // An iterator before the erased entry stays valid.
        const bool has_prev = mit != m.begin();
        const uint64_t prev_key = has_prev ? std::prev(mit)->first : 0;
        auto it = c.find(k);
        ASSERT_TRUE(it != c.end());
        CMap::iterator prev;
        if (has_prev) prev = std::prev(it);
        auto next = c.erase(it);
        auto mnext = m.erase(mit);
        ASSERT_EQ(next == c.end(), mnext == m.end());
        if (mnext != m.end()) {
          ASSERT_EQ(next->first, mnext->first);
        }
        if (has_prev) {
          ASSERT_EQ(prev->first, prev_key);
        }
      } else {
        expect_searches(c, m, key);
      }
      if (step % 997 == 0) expect_same(c, m);
    }
    expect_same(c, m);
    for (uint64_t k = 0; k <= range; k++) expect_searches(c, m, k);
    // Erase everything from the front: chunks empty out and go.
    while (!m.empty()) {
      auto next = c.erase(c.begin());
      m.erase(m.begin());
      ASSERT_EQ(next == c.end(), m.empty());
      if (!m.empty()) {
        ASSERT_EQ(next->first, m.begin()->first);
      }
    }
    EXPECT_TRUE(c.empty());
    EXPECT_TRUE(c.begin() == c.end());
  }
}

TEST(ChunkedMap, BuiltInOrderThenChanged) {
  CMap c;
  std::map<uint64_t, uint64_t> m;
  for (uint64_t k = 0; k < 1000; k++) {
    c.push_back(k * 2, Val{k});
    m.emplace(k * 2, k);
  }
  c.shrink_to_fit();
  expect_same(c, m);
  // Odd keys into full chunks: every chunk splits.
  for (uint64_t k = 1; k < 2000; k += 14) {
    c.emplace(k, Val{k});
    m.emplace(k, k);
  }
  expect_same(c, m);
  for (uint64_t k = 0; k < 2002; k++) expect_searches(c, m, k);
  // A copy is independent of its source.
  CMap copy = c;
  c.erase(c.begin());
  EXPECT_EQ(copy.size(), m.size());
  EXPECT_EQ(c.size(), m.size() - 1);
}

TEST(ChunkedMap, PositionsAreCheckedNotTrusted) {
  CMap c;
  for (uint64_t k = 0; k < 100; k++) c.push_back(k, Val{k});
  auto p = c.pos(c.find(99));
  EXPECT_TRUE(c.in_range(p));
  while (c.size() > 10) c.erase(c.begin());
  EXPECT_FALSE(c.in_range(p));  // that chunk is gone
  CMap empty;
  EXPECT_FALSE(empty.in_range(CMap::Pos{}));
  EXPECT_TRUE(empty.floor(5) == empty.end());
  EXPECT_TRUE(empty.upper_bound(5) == empty.end());
}

}  // namespace
}  // namespace vmatrace
