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

KernelStore kernel_store_from(const vmat_vma_kernel_event& e) {
  KernelStore k;
  k.ts = e.hdr.ts;
  k.start = e.index;
  k.end = e.last + 1 > e.last ? e.last + 1 : e.last;  // the maple tree's last is inclusive
  k.key = e.vma_key;
  k.info = e.vma;
  return k;
}

namespace {

// A run of addresses held by one thing: an untouched piece of a VMA from
// before (store < 0, index into before) or a stored VMA (index into stores).
struct Seg {
  uint64_t s, e;
  int before;  // >= 0: piece of before[before]
  int store;   // >= 0: stores[store]
};

// Removes [s, e) from segs; `tmp` is scratch space, kept by the caller so
// that a syscall's stores cost one allocation, not one each.
void cut_out(std::vector<Seg>& segs, std::vector<Seg>& tmp, uint64_t s, uint64_t e) {
  tmp.clear();
  for (const auto& g : segs) {
    if (g.e <= s || e <= g.s) {
      tmp.push_back(g);
      continue;
    }
    if (g.s < s) tmp.push_back({g.s, s, g.before, g.store});
    if (e < g.e) tmp.push_back({e, g.e, g.before, g.store});
  }
  segs.swap(tmp);
}

}  // namespace

KernelAfter kernel_after(const std::vector<Vma>& before, const std::vector<KernelStore>& stores,
                         const std::vector<std::pair<uint64_t, uint64_t>>& cleared, const Layout& model_after) {
  std::vector<Seg> segs, tmp;
  const size_t most = 2 * (before.size() + stores.size() + cleared.size()) + 2;  // each cut splits at most one
  segs.reserve(most);
  tmp.reserve(most);
  for (size_t i = 0; i < before.size(); i++) {
    cut_out(segs, tmp, before[i].start, before[i].end);  // tolerate duplicates in `before`
    segs.push_back({before[i].start, before[i].end, static_cast<int>(i), -1});
  }
  for (size_t i = 0; i < stores.size(); i++) {
    const auto& st = stores[i];
    if (st.end <= st.start) continue;
    cut_out(segs, tmp, st.start, st.end);
    if (st.key) segs.push_back({st.start, st.end, -1, static_cast<int>(i)});
  }
  for (const auto& [s, e] : cleared)
    if (e > s) cut_out(segs, tmp, s, e);
  std::sort(segs.begin(), segs.end(), [](const Seg& a, const Seg& b) { return a.s < b.s; });
  // One VMA per run of the same owner: pieces of one old VMA, or stores of
  // one vm_area_struct (a VMA stored piecewise is still one VMA).
  auto same_owner = [&](const Seg& a, const Seg& b) {
    if (a.e != b.s) return false;
    if (a.before >= 0) return b.before == a.before;
    return b.store >= 0 && stores[b.store].key == stores[a.store].key;
  };
  KernelAfter out;
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
  return out;
}

}  // namespace vmatrace
