#include "core/vma_changes.h"

#include <algorithm>
#include <unordered_map>

namespace vmatrace {

const char* vma_change_kind_name(VmaChangeKind k) {
  switch (k) {
    case VmaChangeKind::kNew:
      return "vma_new";
    case VmaChangeKind::kRemove:
      return "vma_remove";
    case VmaChangeKind::kMerge:
      return "vma_merge";
    case VmaChangeKind::kSplit:
      return "vma_split";
    case VmaChangeKind::kExpand:
      return "vma_expand";
    case VmaChangeKind::kShrink:
      return "vma_shrink";
    case VmaChangeKind::kFlags:
      return "vma_flags";
    case VmaChangeKind::kMove:
      return "vma_move";
    case VmaChangeKind::kUpdate:
      return "vma_update";
  }
  return "vma_?";
}

bool vma_visibly_equal(const Vma& a, const Vma& b) {
  return a.id == b.id && a.start == b.start && a.end == b.end && a.flags == b.flags && a.pgoff == b.pgoff &&
         a.dev == b.dev && a.ino == b.ino && a.path == b.path && a.deleted == b.deleted && a.special == b.special &&
         a.anon_name == b.anon_name;
}

namespace {

bool overlaps(const Vma& v, uint64_t s, uint64_t e) { return v.start < e && s < v.end; }

// A piece of `whole` as __split_vma() would leave it: pgoff advances with
// the start; the lower piece keeps the original vma (and so its id).
Vma piece_of(const Vma& whole, uint64_t s, uint64_t e) {
  Vma p = whole;
  p.start = s;
  p.end = e;
  p.pgoff = whole.pgoff + ((s - whole.start) >> kPageShift);
  p.id = s == whole.start ? whole.id : 0;
  return p;
}

void sort_unique(std::vector<Vma>& v) {
  auto by_start = [](const Vma& a, const Vma& b) { return a.start < b.start; };
  // Usually already in order (spans are queried low to high): sorting would
  // still move every Vma, strings and all.
  if (!std::is_sorted(v.begin(), v.end(), by_start)) std::sort(v.begin(), v.end(), by_start);
  v.erase(std::unique(v.begin(), v.end(), [](const Vma& a, const Vma& b) { return a.start == b.start; }), v.end());
}

struct Piece {
  uint64_t s, e;
  int into;  // index into A, or -1: the piece goes away
};

// The working vectors of derive_vma_changes(), kept between calls (one set
// per thread): it runs for every record a printer sees, and would otherwise
// allocate a dozen of them each time.
struct Scratch {
  std::vector<Vma> B, A;
  std::vector<VmaChange> splits, removes, moves, rest;
  std::vector<char> a_done, b_done, a_in_split;
  std::vector<std::vector<Vma>> parts;
  std::vector<uint64_t> cuts;
  std::vector<Piece> pieces;
  std::vector<Vma> gained;
  // Emptied from/to vectors of changes already shown (recycle_vma_changes()).
  std::vector<std::vector<Vma>> spare;
};

Scratch& scratch_of_thread() {
  thread_local Scratch scratch;
  return scratch;
}

// A vector for a change's from or to: a recycled one when there is one.
std::vector<Vma> spare_vector(Scratch& s) {
  if (s.spare.empty()) return {};
  std::vector<Vma> v = std::move(s.spare.back());
  s.spare.pop_back();
  return v;
}

// A change of `kind` from `from` to `to` (each one VMA, or none).
VmaChange make_change(Scratch& s, VmaChangeKind kind, const Vma* from, const Vma* to) {
  VmaChange c;
  c.kind = kind;
  c.from = spare_vector(s);
  c.to = spare_vector(s);
  if (from) c.from.push_back(*from);
  if (to) c.to.push_back(*to);
  return c;
}

}  // namespace

void recycle_vma_changes(std::vector<VmaChange>& changes) {
  // Bounded: a change that touched thousands of VMAs gives back two large
  // vectors, kept; a pool of them is not.
  constexpr size_t kMaxSpare = 64;
  Scratch& s = scratch_of_thread();
  for (auto& c : changes)
    for (auto* v : {&c.from, &c.to})
      if (s.spare.size() < kMaxSpare && v->capacity() > 0) {
        v->clear();
        s.spare.push_back(std::move(*v));
      }
  changes.clear();
}

std::vector<VmaChange> derive_vma_changes(std::vector<Vma> before, std::vector<Vma> after,
                                          const VmaChangeHints& hints) {
  std::vector<VmaChange> out;
  derive_vma_changes(before, after, hints, out);
  return out;
}

void derive_vma_changes(std::vector<Vma>& before, std::vector<Vma>& after, const VmaChangeHints& hints,
                        std::vector<VmaChange>& out) {
  out.clear();
  sort_unique(before);
  sort_unique(after);
  // Both sides are sorted by start and disjoint: every lookup below is a
  // binary search, so a call that touches thousands of VMAs (a munmap of a
  // whole region) costs O(n log n), not O(n^2).
  auto by_start = [](const Vma& a, uint64_t x) { return a.start < x; };
  auto unchanged_in = [&](const Vma& v, const std::vector<Vma>& other) {
    auto it = std::lower_bound(other.begin(), other.end(), v.start, by_start);
    return it != other.end() && it->start == v.start && vma_visibly_equal(v, *it);
  };
  Scratch& scratch = scratch_of_thread();
  std::vector<Vma>& B = scratch.B;  // what changed, on each side
  std::vector<Vma>& A = scratch.A;
  B.clear();
  A.clear();
  for (const auto& v : before)
    if (!unchanged_in(v, after)) B.push_back(v);
  for (const auto& v : after)
    if (!unchanged_in(v, before)) A.push_back(v);
  if (B.empty() && A.empty()) return;

  std::vector<VmaChange>& splits = scratch.splits;
  std::vector<VmaChange>& removes = scratch.removes;
  std::vector<VmaChange>& moves = scratch.moves;
  std::vector<VmaChange>& rest = scratch.rest;
  for (auto* v : {&splits, &removes, &moves, &rest}) v->clear();
  std::vector<char>& a_done = scratch.a_done;
  std::vector<char>& b_done = scratch.b_done;
  std::vector<char>& a_in_split = scratch.a_in_split;
  a_done.assign(A.size(), 0);
  b_done.assign(B.size(), 0);
  a_in_split.assign(A.size(), 0);
  // Surviving pieces of old VMAs inside each new one.
  std::vector<std::vector<Vma>>& parts = scratch.parts;
  if (parts.size() < A.size()) parts.resize(A.size());
  for (size_t j = 0; j < A.size(); j++) parts[j].clear();

  // The VMAs of A overlapping [s, e): a run of A (disjoint, sorted, so
  // their ends are sorted too).
  auto a_overlapping = [&A](uint64_t s, uint64_t e) {
    size_t lo = static_cast<size_t>(std::partition_point(A.begin(), A.end(), [s](const Vma& a) { return a.end <= s; }) -
                                    A.begin());
    size_t hi = lo;
    while (hi < A.size() && A[hi].start < e) hi++;
    return std::pair{lo, hi};
  };

  // move_vma(): the vma (same id) now lives elsewhere. For each old VMA in
  // order, the first new one (in order) with its id that is still free.
  auto try_move = [&](size_t i, size_t j) {
    if (a_done[j] || A[j].id != B[i].id || overlaps(A[j], B[i].start, B[i].end)) return false;
    moves.push_back(make_change(scratch, VmaChangeKind::kMove, &B[i], &A[j]));
    b_done[i] = a_done[j] = true;
    return true;
  };
  if (A.size() * B.size() <= 256) {  // the usual handful: no index to build
    for (size_t i = 0; i < B.size(); i++)
      for (size_t j = 0; j < A.size(); j++)
        if (try_move(i, j)) break;
  } else {
    std::unordered_map<uint64_t, std::vector<size_t>> a_by_id;
    for (size_t j = 0; j < A.size(); j++) a_by_id[A[j].id].push_back(j);
    for (size_t i = 0; i < B.size(); i++)
      if (auto it = a_by_id.find(B[i].id); it != a_by_id.end())
        for (size_t j : it->second)
          if (try_move(i, j)) break;
  }

  const bool have_replaced = hints.replaced_end > hints.replaced_start;
  for (size_t i = 0; i < B.size(); i++) {
    if (b_done[i]) continue;
    const Vma& b = B[i];
    std::vector<uint64_t>& cuts = scratch.cuts;
    cuts.assign({b.start, b.end});
    auto cut = [&](uint64_t x) {
      if (x > b.start && x < b.end) cuts.push_back(x);
    };
    const auto [a_lo, a_hi] = a_overlapping(b.start, b.end);
    for (size_t j = a_lo; j < a_hi; j++)
      if (!a_done[j]) cut(A[j].start), cut(A[j].end);
    if (have_replaced) cut(hints.replaced_start), cut(hints.replaced_end);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<Piece>& pieces = scratch.pieces;
    pieces.clear();
    int survivors = 0;
    for (auto it = cuts.begin(); std::next(it) != cuts.end(); ++it) {
      Piece p{*it, *std::next(it), -1};
      bool replaced = have_replaced && p.s >= hints.replaced_start && p.e <= hints.replaced_end;
      for (size_t j = a_lo; j < a_hi && !replaced; j++)
        if (!a_done[j] && A[j].start <= p.s && p.e <= A[j].end) p.into = static_cast<int>(j);
      survivors += p.into >= 0;
      pieces.push_back(p);
    }
    if (survivors == 0) {  // vms_complete_munmap_vmas(): all of it went
      removes.push_back(make_change(scratch, VmaChangeKind::kRemove, &b, nullptr));
      continue;
    }
    if (pieces.size() == 1) {
      parts[pieces[0].into].push_back(b);
      continue;
    }
    if (hints.in_place_resize && survivors == 1 && pieces.size() == 2) {
      const Piece& kept = pieces[0].into >= 0 ? pieces[0] : pieces[1];
      const Vma& a = A[kept.into];
      if (a.id == b.id && a.start >= b.start && a.end <= b.end) {  // vma_shrink() / munmap of one end
        rest.push_back(make_change(scratch, VmaChangeKind::kShrink, &b, &a));
        a_done[kept.into] = true;
        continue;
      }
    }
    // __split_vma() at each boundary, then the pieces go their ways.
    VmaChange sp = make_change(scratch, VmaChangeKind::kSplit, &b, nullptr);
    for (const auto& p : pieces) {
      Vma piece = piece_of(b, p.s, p.e);
      if (p.into >= 0) {
        const Vma& a = A[p.into];
        parts[p.into].push_back(piece);
        // A piece that is a VMA of its own afterwards is shown as it ended up.
        if (a.start == p.s && a.end == p.e) {
          sp.to.push_back(a);
          a_in_split[p.into] = true;
          continue;
        }
      } else {
        removes.push_back(make_change(scratch, VmaChangeKind::kRemove, &piece, nullptr));
      }
      sp.to.push_back(std::move(piece));
    }
    splits.push_back(std::move(sp));
  }

  for (size_t j = 0; j < A.size(); j++) {
    if (a_done[j]) continue;
    const Vma& a = A[j];
    auto& P = parts[j];
    std::sort(P.begin(), P.end(), [](const Vma& x, const Vma& y) { return x.start < y.start; });
    // The parts of `a` no old VMA covered: a new range.
    std::vector<Vma>& gained = scratch.gained;
    gained.clear();
    uint64_t cur = a.start;
    for (const auto& p : P) {
      if (p.start > cur) gained.push_back(piece_of(a, cur, p.start));
      cur = std::max(cur, p.end);
    }
    if (cur < a.end) gained.push_back(piece_of(a, cur, a.end));
    for (auto& g : gained) g.id = 0;
    if (P.empty()) {
      rest.push_back(make_change(scratch, VmaChangeKind::kNew, nullptr, &a));
    } else if (P.size() >= 2 || (!gained.empty() && hints.new_range_merges)) {
      // vma_merge_new_range() / vma_merge_existing_range() / commit_merge()
      VmaChange merge = make_change(scratch, VmaChangeKind::kMerge, nullptr, &a);
      std::vector<Vma>& from = merge.from;
      from.insert(from.end(), P.begin(), P.end());
      from.insert(from.end(), gained.begin(), gained.end());
      std::sort(from.begin(), from.end(), [](const Vma& x, const Vma& y) { return x.start < y.start; });
      rest.push_back(std::move(merge));
    } else if (!gained.empty()) {  // vma_expand(), expand_downwards(), do_brk_flags()
      rest.push_back(make_change(scratch, VmaChangeKind::kExpand, &P[0], &a));
    } else if (a_in_split[j]) {
      // shown by its split already
    } else if (P[0].id != a.id) {
      removes.push_back(make_change(scratch, VmaChangeKind::kRemove, &P[0], nullptr));
      rest.push_back(make_change(scratch, VmaChangeKind::kNew, nullptr, &a));
    } else if (P[0].flags != a.flags) {  // mprotect_fixup(), madvise_update_vma() in place
      rest.push_back(make_change(scratch, VmaChangeKind::kFlags, &P[0], &a));
    } else if (!vma_visibly_equal(P[0], a)) {
      rest.push_back(make_change(scratch, VmaChangeKind::kUpdate, &P[0], &a));
    }
  }

  out.reserve(splits.size() + removes.size() + moves.size() + rest.size());
  for (auto* v : {&splits, &removes, &moves, &rest}) {
    for (auto& c : *v) out.push_back(std::move(c));
    v->clear();
  }
}

}  // namespace vmatrace
