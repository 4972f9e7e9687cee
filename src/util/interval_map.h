#pragma once
// Disjoint intervals kept in a std::map<start, V> where each V holds its
// interval's end: the one operation both the residency map (core/rss_model)
// and the RSS report's labels (report/rss_report) need.

#include <cstdint>
#include <iterator>
#include <map>

namespace vmatrace {

// Removes [start, end) from the intervals of `m`, cutting the ones that
// straddle its edges (a value whose interval covers both edges becomes two).
// `end_of(V&)` gives a reference to a value's end. Returns the first
// interval after [start, end): the hint for inserting one there.
template <typename V, typename EndOf>
typename std::map<uint64_t, V>::iterator carve_out(std::map<uint64_t, V>& m, uint64_t start, uint64_t end,
                                                   EndOf end_of) {
  if (start >= end) return m.lower_bound(start);
  auto it = m.lower_bound(start);
  if (it != m.begin()) {
    auto prev = std::prev(it);
    if (end_of(prev->second) > start) {
      V tail = prev->second;
      end_of(prev->second) = start;
      if (end_of(tail) > end) return m.emplace_hint(it, end, tail);
    }
  }
  while (it != m.end() && it->first < end) {
    if (end_of(it->second) > end) {
      V tail = it->second;
      it = m.erase(it);
      return m.emplace_hint(it, end, tail);
    }
    it = m.erase(it);
  }
  return it;
}

}  // namespace vmatrace
