#include "core/kernel_view.h"

#include <algorithm>

#include "core/records.h"

namespace vmatrace {

const char* vma_change_source_name(VmaChangeSource s) {
  switch (s) {
    case VmaChangeSource::kInference:
      return "inference";
    case VmaChangeSource::kMapleTree:
      return "maple_tree";
    case VmaChangeSource::kFentry:
      return "fentry";
    case VmaChangeSource::kKprobe:
      return "kprobe";
  }
  return "?";
}

VmaChangeSource vma_change_source_of(uint32_t s) {
  switch (s) {
    case VMAT_VMAK_MAPLE_TREE:
      return VmaChangeSource::kMapleTree;
    case VMAT_VMAK_FENTRY:
      return VmaChangeSource::kFentry;
    case VMAT_VMAK_KPROBE:
      return VmaChangeSource::kKprobe;
    default:
      return VmaChangeSource::kInference;
  }
}

KernelStore kernel_store_from(const vmat_vma_store& s, uint64_t ts) {
  KernelStore k;
  k.ts = ts;
  k.start = s.index;
  k.end = s.last + 1 > s.last ? s.last + 1 : s.last;  // the maple tree's last is inclusive
  k.key = s.vma_key;
  k.info = s.vma;
  return k;
}

KernelStore kernel_store_from(const vmat_vma_kernel_event& e) {
  return kernel_store_from(vmat_vma_store{e.index, e.last, e.vma_key, e.vma}, e.hdr.ts);
}

namespace {

// A run of addresses held by one thing: an untouched piece of a VMA from
// before (store < 0, index into before) or a stored VMA (index into stores).
struct Seg {
  uint64_t s, e;
  int before;  // >= 0: piece of before[before]
  int store;   // >= 0: stores[store]
};

// Removes [s, e) from segs, which stay sorted and non-overlapping; returns
// where a segment starting at s goes. Only the segments [s, e) touches are
// looked at: O(log n + k) plus one move of the tail (a munmap of thousands
// of VMAs must not cost thousands of passes over all of them).
size_t cut_out(std::vector<Seg>& segs, uint64_t s, uint64_t e) {
  // Sorted by start and disjoint, so the ends are sorted too.
  auto first = std::partition_point(segs.begin(), segs.end(), [s](const Seg& g) { return g.e <= s; });
  auto last = first;
  Seg pieces[2];
  size_t n = 0;
  for (; last != segs.end() && last->s < e; ++last) {
    if (last->s < s) pieces[n++] = {last->s, s, last->before, last->store};
    if (e < last->e) pieces[n++] = {e, last->e, last->before, last->store};
  }
  const size_t at = static_cast<size_t>(first - segs.begin());
  const size_t removed = static_cast<size_t>(last - first);
  // Replace [first, last) by the (at most two) pieces left standing.
  if (n <= removed) {
    std::copy(pieces, pieces + n, first);
    segs.erase(first + static_cast<ptrdiff_t>(n), last);
  } else {
    std::copy(pieces, pieces + removed, first);
    segs.insert(first + static_cast<ptrdiff_t>(removed), pieces + removed, pieces + n);
  }
  // A piece below s (only the first one can be) stays before the new segment.
  return at + (n > 0 && segs[at].s < s ? 1 : 0);
}

void put(std::vector<Seg>& segs, size_t at, Seg g) { segs.insert(segs.begin() + static_cast<ptrdiff_t>(at), g); }

}  // namespace

KernelAfter kernel_after(const std::vector<Vma>& before, const std::vector<KernelStore>& stores,
                         const std::vector<std::pair<uint64_t, uint64_t>>& cleared, const Layout& model_after) {
  KernelAfter out;
  kernel_after(before, stores, cleared, model_after, out);
  return out;
}

void kernel_after(const std::vector<Vma>& before, const std::vector<KernelStore>& stores,
                  const std::vector<std::pair<uint64_t, uint64_t>>& cleared, const Layout& model_after,
                  KernelAfter& out) {
  out.vmas.clear();
  out.disagreements = 0;
  // Kept between calls (one per thread): this runs for every syscall a printer sees.
  thread_local std::vector<Seg> segs;
  segs.clear();
  segs.reserve(before.size() + 2 * (stores.size() + cleared.size()) + 2);
  // `before` holds the model's VMAs (disjoint; a duplicate is the same VMA
  // twice, the later one kept), usually already in address order.
  for (size_t i = 0; i < before.size(); i++) {
    if (before[i].end <= before[i].start) continue;
    if (segs.empty() || segs.back().e <= before[i].start) {
      segs.push_back({before[i].start, before[i].end, static_cast<int>(i), -1});
      continue;
    }
    put(segs, cut_out(segs, before[i].start, before[i].end), {before[i].start, before[i].end, static_cast<int>(i), -1});
  }
  for (size_t i = 0; i < stores.size(); i++) {
    const auto& st = stores[i];
    if (st.end <= st.start) continue;
    size_t at = cut_out(segs, st.start, st.end);
    if (st.key) put(segs, at, {st.start, st.end, -1, static_cast<int>(i)});
  }
  for (const auto& [s, e] : cleared)
    if (e > s) cut_out(segs, s, e);
  // One VMA per run of the same owner: pieces of one old VMA, or stores of
  // one vm_area_struct (a VMA stored piecewise is still one VMA).
  auto same_owner = [&](const Seg& a, const Seg& b) {
    if (a.e != b.s) return false;
    if (a.before >= 0) return b.before == a.before;
    return b.store >= 0 && stores[b.store].key == stores[a.store].key;
  };
  out.vmas.reserve(segs.size());
  for (size_t i = 0; i < segs.size();) {
    size_t j = i + 1;
    while (j < segs.size() && same_owner(segs[j - 1], segs[j])) j++;
    const uint64_t s = segs[i].s, e = segs[j - 1].e;
    const Vma* m = model_after.find(s);
    if (m && m->start == s && m->end == e) {
      out.vmas.push_back(*m);
    } else {
      out.disagreements++;
      Vma v;
      if (segs[i].before >= 0) {
        v = before[segs[i].before];
        v.pgoff += (s - v.start) >> kPageShift;
      } else {
        const auto& st = stores[segs[i].store];
        v = vma_from_info(st.info, {});
        if (m && m->same_file(v)) v.path = m->path, v.special = m->special;
        v.pgoff = s >= st.info.start ? st.info.pgoff + ((s - st.info.start) >> kPageShift)
                                     : st.info.pgoff - ((st.info.start - s) >> kPageShift);
        v.id = 0;
      }
      v.start = s;
      v.end = e;
      out.vmas.push_back(std::move(v));
    }
    i = j;
  }
}

}  // namespace vmatrace
