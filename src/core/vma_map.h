#pragma once
// The Layout's VMAs by start address: a two-level B+-tree-like sorted
// container (a sorted vector of small sorted chunks, with the chunks' first
// keys in a flat array). What a std::map<uint64_t, Vma> did, with the VMAs
// stored inline and contiguous: a lookup is a binary search over a small
// array of keys (the chunk firsts: 8 bytes per 32 VMAs, cache resident even
// at a million VMAs) and one within a chunk, instead of a descent through
// twenty tree nodes that each miss the cache; a VMA costs no allocation of
// its own; and a walk over neighbours is a walk over an array.
//
// Iterators are (chunk, index) pairs. Invalidation is a vector's, not a
// map's: insert() invalidates every iterator, pointer and reference into
// the container; erase() invalidates those at or after the erased element
// (the ones before it stay valid). A stale iterator is detected by nothing:
// callers re-find by key after an insert.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace vmatrace {

template <class V>
class ChunkedMap {
 public:
  struct Entry {
    uint64_t first;  // the key (the VMA's start)
    V second;
  };
  static_assert(std::is_trivially_copyable_v<Entry>, "chunk moves should be memmoves");
  // Small enough that an insert's shift within a chunk is a few cache
  // lines, large enough that the chunk firsts stay a few KiB.
  static constexpr size_t kChunk = 32;

 private:
  using Chunk = std::vector<Entry>;

  template <bool Const>
  class Iter {
    using Owner = std::conditional_t<Const, const ChunkedMap, ChunkedMap>;

   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const Entry*, Entry*>;
    using reference = std::conditional_t<Const, const Entry&, Entry&>;

    Iter() = default;
    Iter(Owner* m, size_t c, size_t i) : m_(m), c_(c), i_(i) {}
    template <bool C = Const, class = std::enable_if_t<C>>
    Iter(const Iter<false>& o) : m_(o.m_), c_(o.c_), i_(o.i_) {}  // NOLINT: iterator to const_iterator

    reference operator*() const { return m_->chunks_[c_][i_]; }
    pointer operator->() const { return &m_->chunks_[c_][i_]; }
    Iter& operator++() {
      if (++i_ == m_->chunks_[c_].size()) {
        ++c_;
        i_ = 0;
      }
      return *this;
    }
    Iter operator++(int) {
      Iter t = *this;
      ++*this;
      return t;
    }
    Iter& operator--() {
      if (i_ == 0) {
        --c_;
        i_ = m_->chunks_[c_].size() - 1;
      } else {
        --i_;
      }
      return *this;
    }
    Iter operator--(int) {
      Iter t = *this;
      --*this;
      return t;
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.c_ == b.c_ && a.i_ == b.i_; }

   private:
    friend class ChunkedMap;
    template <bool>
    friend class Iter;
    Owner* m_ = nullptr;
    size_t c_ = 0, i_ = 0;
  };

 public:
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  iterator begin() { return {this, 0, 0}; }
  iterator end() { return {this, chunks_.size(), 0}; }
  const_iterator begin() const { return {this, 0, 0}; }
  const_iterator end() const { return {this, chunks_.size(), 0}; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    chunks_.clear();
    firsts_.clear();
    size_ = 0;
  }

  // The first entry with a key above `key` (std::map::upper_bound).
  iterator upper_bound(uint64_t key) { return bound(key, /*upper=*/true); }
  // The first entry with a key at or above `key`.
  iterator lower_bound(uint64_t key) { return bound(key, /*upper=*/false); }
  const_iterator upper_bound(uint64_t key) const { return const_cast<ChunkedMap*>(this)->upper_bound(key); }
  const_iterator lower_bound(uint64_t key) const { return const_cast<ChunkedMap*>(this)->lower_bound(key); }
  iterator find(uint64_t key) {
    auto it = lower_bound(key);
    return it != end() && it->first == key ? it : end();
  }
  // The entry with the largest key at or below `key`, or end(): upper_bound
  // and one step back, in one search.
  iterator floor(uint64_t key) {
    auto c = std::upper_bound(firsts_.begin(), firsts_.end(), key);
    if (c == firsts_.begin()) return end();
    return floor_in(static_cast<size_t>(c - firsts_.begin()) - 1, key);  // its first is at or below key
  }
  // A position kept as plain numbers (no pointer into this container: it
  // survives copies, moves and mutations). After a mutation it may name
  // another entry, or none: check in_range(), then the key.
  struct Pos {
    size_t c = std::numeric_limits<size_t>::max(), i = 0;
  };
  Pos pos(const iterator& it) const { return {it.c_, it.i_}; }
  bool in_range(Pos p) const { return p.c < chunks_.size() && p.i < chunks_[p.c].size(); }
  iterator at(Pos p) { return {this, p.c, p.i}; }

  // floor(key), starting from `hint` (floor()'s last answer, kept by the
  // caller) and updating it: a query near the previous one (the same
  // record asks about one place many times) searches no chunk index.
  iterator floor(uint64_t key, Pos& hint) {
    const size_t c = hint.c;
    if (c < chunks_.size() && firsts_[c] <= key && (c + 1 == chunks_.size() || key < firsts_[c + 1])) {
      const Chunk& ch = chunks_[c];
      size_t i = std::min(hint.i, ch.size() - 1);
      if (ch[i].first > key) {
        // Below the hint: ch[0].first <= key stops the walk.
        for (int n = 0; ch[i].first > key; n++) {
          if (n == 3) return remember(floor_in(c, key), hint);
          --i;
        }
      } else {
        for (int n = 0; i + 1 < ch.size() && ch[i + 1].first <= key; n++) {
          if (n == 3) return remember(floor_in(c, key), hint);
          ++i;
        }
      }
      hint = {c, i};
      return {this, c, i};
    }
    auto it = floor(key);
    return it == end() ? it : remember(it, hint);
  }

  // Inserts (key, value) unless the key is there; {position, inserted}.
  std::pair<iterator, bool> emplace(uint64_t key, V value) {
    Pos unused;
    return emplace(key, std::move(value), unused);
  }
  // The same, finding the place through floor(key, hint).
  std::pair<iterator, bool> emplace(uint64_t key, V value, Pos& hint) {
    auto f = floor(key, hint);
    if (f != end() && f->first == key) return {f, false};
    auto at = f == end() ? begin() : std::next(f);
    size_t c = at.c_, i = at.i_;
    if (chunks_.empty()) {
      chunks_.emplace_back();
      firsts_.push_back(key);
    } else if (c == chunks_.size() || (i == 0 && c > 0 && chunks_[c - 1].size() < kChunk)) {
      // Past the last key, or between two chunks: the end of the chunk before.
      c -= 1;
      i = chunks_[c].size();
    }
    if (chunks_[c].size() == kChunk) {
      // A full chunk splits in two halves; the new entry goes to its half.
      const size_t half = kChunk / 2;
      Chunk upper(chunks_[c].begin() + static_cast<std::ptrdiff_t>(half), chunks_[c].end());
      chunks_[c].resize(half);
      chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(c) + 1, std::move(upper));
      firsts_.insert(firsts_.begin() + static_cast<std::ptrdiff_t>(c) + 1, chunks_[c + 1].front().first);
      if (i > half) {
        c += 1;
        i -= half;
      }
    }
    Chunk& ch = chunks_[c];
    if (ch.size() == ch.capacity()) ch.reserve(std::min(kChunk, 2 * ch.size()));  // never past kChunk
    ch.insert(ch.begin() + static_cast<std::ptrdiff_t>(i), Entry{key, std::move(value)});
    if (i == 0) firsts_[c] = key;
    size_++;
    hint = {c, i};
    return {{this, c, i}, true};
  }

  // Appends an entry whose key is above every key held (building from a
  // sorted sequence): chunks are filled whole. shrink_to_fit() after the
  // last one gives back what the last chunk's growth left unused.
  void push_back(uint64_t key, V value) {
    if (chunks_.empty() || chunks_.back().size() == kChunk) {
      chunks_.emplace_back();
      firsts_.push_back(key);
    }
    chunks_.back().push_back(Entry{key, std::move(value)});
    size_++;
  }
  void shrink_to_fit() {
    if (!chunks_.empty()) chunks_.back().shrink_to_fit();
    chunks_.shrink_to_fit();
    firsts_.shrink_to_fit();
  }

  // Removes the entry at `it`; returns the one after it.
  iterator erase(iterator it) {
    const size_t c = it.c_, i = it.i_;
    Chunk& ch = chunks_[c];
    ch.erase(ch.begin() + static_cast<std::ptrdiff_t>(i));
    size_--;
    if (ch.empty()) {
      chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(c));
      firsts_.erase(firsts_.begin() + static_cast<std::ptrdiff_t>(c));
      return {this, c, 0};
    }
    if (i == 0) firsts_[c] = ch.front().first;
    // Two thin chunks in a row become one (the next one joins this one, so
    // that the entries before `it` stay where they are).
    if (c + 1 < chunks_.size() && ch.size() + chunks_[c + 1].size() <= kChunk / 2) {
      Chunk& next = chunks_[c + 1];
      ch.insert(ch.end(), next.begin(), next.end());
      chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(c) + 1);
      firsts_.erase(firsts_.begin() + static_cast<std::ptrdiff_t>(c) + 1);
    }
    return i < chunks_[c].size() ? iterator{this, c, i} : iterator{this, c + 1, 0};
  }

  // Heap bytes held (for memory accounting).
  size_t heap_bytes() const {
    size_t n = chunks_.capacity() * sizeof(Chunk) + firsts_.capacity() * sizeof(uint64_t);
    for (const auto& ch : chunks_) n += ch.capacity() * sizeof(Entry);
    return n;
  }

 private:
  iterator remember(iterator it, Pos& hint) {
    hint = pos(it);
    return it;
  }
  // floor(key) within chunk c, which holds it.
  iterator floor_in(size_t c, uint64_t key) {
    const Chunk& ch = chunks_[c];
    auto i = std::upper_bound(ch.begin(), ch.end(), key, [](uint64_t k, const Entry& e) { return k < e.first; });
    return {this, c, static_cast<size_t>(i - ch.begin()) - 1};
  }
  iterator bound(uint64_t key, bool upper) {
    // The chunk that holds the answer: the last one whose first key is
    // below (upper: at or below) `key`; its successor if none of it is.
    auto c = upper ? std::upper_bound(firsts_.begin(), firsts_.end(), key)
                   : std::lower_bound(firsts_.begin(), firsts_.end(), key);
    if (c == firsts_.begin()) return begin();
    const size_t ci = static_cast<size_t>(c - firsts_.begin()) - 1;
    const Chunk& ch = chunks_[ci];
    auto i = upper
                 ? std::upper_bound(ch.begin(), ch.end(), key, [](uint64_t k, const Entry& e) { return k < e.first; })
                 : std::lower_bound(ch.begin(), ch.end(), key, [](const Entry& e, uint64_t k) { return e.first < k; });
    if (i == ch.end()) return {this, ci + 1, 0};
    return {this, ci, static_cast<size_t>(i - ch.begin())};
  }

  std::vector<Chunk> chunks_;     // never an empty one
  std::vector<uint64_t> firsts_;  // chunks_[c].front().first, for the search
  size_t size_ = 0;
};

}  // namespace vmatrace
