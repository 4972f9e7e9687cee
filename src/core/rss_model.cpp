#include "core/rss_model.h"

#include "util/interval_map.h"

#include <algorithm>

namespace vmatrace {
namespace {

constexpr uint64_t kPageMask = ~(kPageSize - 1);
constexpr uint64_t kHugeSize = 2u << 20;  // a PMD's worth (HPAGE_PMD_SIZE on x86-64)
constexpr int64_t kHugePages = kHugeSize / kPageSize;
constexpr uint64_t kPfWrite = 2;  // X86_PF_WRITE (arch/x86/include/asm/trap_pf.h)
// madvise advices that zap the range's page table entries (mm/madvise.c
// madvise_dontneed_free(), madvise_remove(), madvise_guard_install()).
constexpr uint64_t kMadvDontneed = 4, kMadvRemove = 9, kMadvDontneedLocked = 24, kMadvGuardInstall = 102;

uint64_t page_up(uint64_t a) { return (a + kPageSize - 1) & kPageMask; }
bool failed(int64_t ret) { return ret < 0 && ret > -4096; }

Residency residency_of(uint64_t bytes, uint64_t flags) {
  Residency r;
  if (flags & VMAT_RSS_PRESENT) {
    r.rss = bytes;
    if (!(flags & VMAT_RSS_FILE)) r.anon = bytes;
  } else if (flags & VMAT_RSS_SWAPPED) {
    r.swap = bytes;
  }
  return r;
}

}  // namespace

void RssMap::clear(uint64_t start, uint64_t end) {
  carve_out(runs_, start, end, [](Run& r) -> uint64_t& { return r.end; });
}

void RssMap::insert_merged(uint64_t start, uint64_t end, uint64_t flags) {
  // [start, end) is empty here; join equal neighbours so a sequential touch
  // stays one run.
  auto next = runs_.lower_bound(start);
  if (next != runs_.end() && next->first == end && next->second.flags == flags) {
    end = next->second.end;
    next = runs_.erase(next);
  }
  if (next != runs_.begin()) {
    auto prev = std::prev(next);
    if (prev->second.end == start && prev->second.flags == flags) {
      prev->second.end = end;
      return;
    }
  }
  runs_.emplace_hint(next, start, Run{end, flags});
}

void RssMap::assign(uint64_t start, uint64_t end, std::span<const vmat_rss_run> runs) {
  clear(start, end);
  for (const auto& r : runs) {
    uint64_t s = std::max<uint64_t>(r.start, start), e = std::min<uint64_t>(r.end, end);
    if (s < e && r.flags) insert_merged(s, e, r.flags);
  }
}

void RssMap::set_page(uint64_t page, uint64_t flags) {
  // Fast path, one lookup: the page is already so, or extends the run below it.
  auto it = runs_.upper_bound(page);
  if (it != runs_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > page && prev->second.flags == flags) return;
    if (prev->second.end == page && prev->second.flags == flags &&
        (it == runs_.end() || it->first > page + kPageSize)) {
      prev->second.end += kPageSize;
      return;
    }
  }
  clear(page, page + kPageSize);
  insert_merged(page, page + kPageSize, flags);
}

uint64_t RssMap::flags_at(uint64_t addr) const {
  auto it = runs_.upper_bound(addr);
  if (it == runs_.begin()) return 0;
  --it;
  return it->second.end > addr ? it->second.flags : 0;
}

void RssMap::move(uint64_t from, uint64_t len, uint64_t to) {
  std::vector<vmat_rss_run> moved;
  auto it = runs_.upper_bound(from);
  if (it != runs_.begin() && std::prev(it)->second.end > from) --it;
  for (; it != runs_.end() && it->first < from + len; ++it) {
    uint64_t s = std::max(it->first, from), e = std::min(it->second.end, from + len);
    moved.push_back({s - from + to, e - from + to, it->second.flags});
  }
  clear(from, from + len);
  clear(to, to + len);
  for (const auto& r : moved) insert_merged(r.start, r.end, r.flags);
}

void RssMap::clip_to(const Layout& l) {
  uint64_t covered_to = 0;  // runs below this lie in VMAs already visited
  l.for_each_vma([&](const Vma& v) {
    clear(covered_to, v.start);
    covered_to = v.end;
  });
  clear(covered_to, ~uint64_t{0});
}

Residency RssMap::sum(uint64_t start, uint64_t end) const {
  Residency r;
  auto it = runs_.upper_bound(start);
  if (it != runs_.begin() && std::prev(it)->second.end > start) --it;
  for (; it != runs_.end() && it->first < end; ++it) {
    uint64_t s = std::max(it->first, start), e = std::min(it->second.end, end);
    r += residency_of(e - s, it->second.flags);
  }
  return r;
}

RssMap RssMap::anon_copy() const {
  RssMap m;
  for (const auto& [s, r] : runs_)
    if ((r.flags & VMAT_RSS_PRESENT) && !(r.flags & VMAT_RSS_FILE)) m.runs_.emplace_hint(m.runs_.end(), s, r);
  return m;
}

Residency vma_residency(const RssMap& m, const Vma& v) {
  // smaps_pte_entry() counts only pages vm_normal_page() returns, and
  // hugetlb under its own fields.
  if (v.flags & (VM_PFNMAP | VM_IO | VM_HUGETLB)) return {};
  return m.sum(v.start, v.end);
}

const RssMap* RssModel::map(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second.map;
}

uint64_t RssModel::last_scan_ts(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? 0 : it->second.last_scan_ts;
}

uint64_t RssModel::last_kernel_rss(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? 0 : it->second.kernel_rss;
}

std::optional<KernelRss> RssModel::kernel_counters(uint32_t pid) const {
  auto it = procs_.find(pid);
  if (it == procs_.end() || !it->second.counters_known) return std::nullopt;
  const auto& c = it->second.counters;
  auto bytes = [](int64_t pages) { return pages > 0 ? static_cast<uint64_t>(pages) * kPageSize : 0; };
  return KernelRss{bytes(c[VMAT_MM_FILE]), bytes(c[VMAT_MM_ANON]), bytes(c[VMAT_MM_SWAP]), bytes(c[VMAT_MM_SHMEM])};
}

void RssModel::rss_stat(Proc& p, const vmat_rss_stat_event& e, const Layout* after) {
  if (e.flags & VMAT_RSS_STAT_BASE) {
    std::copy(std::begin(e.pages), std::end(e.pages), p.counters.begin());
    p.counters_known = true;
    p.mm_key = e.mm_key;
    return;
  }
  // Another mm's (exec's old one, torn down after the new one's base): not this process's now.
  if (!p.counters_known || e.mm_key != p.mm_key) return;
  p.counters[e.member] += e.delta;
  // A fault that mapped a PMD's worth in one go mapped a transparent huge
  // page (do_huge_pmd_anonymous_page(), do_set_pmd() for files): the
  // 2 MiB-aligned range around the address, inside one VMA.
  if (!(e.flags & VMAT_RSS_STAT_IN_FAULT) || e.delta != kHugePages || e.member == VMAT_MM_SWAP || !after) return;
  const uint64_t start = e.addr & ~(kHugeSize - 1), end = start + kHugeSize;
  const Vma* v = after->find(e.addr);
  if (!v || v->start > start || v->end < end || (v->flags & (VM_PFNMAP | VM_IO | VM_HUGETLB))) return;
  const uint64_t flags = VMAT_RSS_PRESENT | VMAT_RSS_HUGE | (e.member == VMAT_MM_ANON ? 0 : VMAT_RSS_FILE);
  const vmat_rss_run run{start, end, flags};
  p.map.assign(start, end, std::span(&run, 1));
}

RssModel::Proc* RssModel::find(uint32_t pid) { return last_.find(procs_, pid); }

void RssModel::forget(uint32_t pid) {
  last_.forget(pid);
  procs_.erase(pid);
}

void RssModel::before_apply(const DecodedRecord& rec, const Layout* before) {
  if (rec.type != VMAT_EV_SYSCALL || !before) return;
  const auto& s = rec.sys;
  if (failed(s.ret)) return;
  if (s.sys == VMAT_SYS_SHMDT) {
    Proc* p = find(rec.hdr.pid);
    if (!p) return;
    for (auto [a, b] : before->shmdt_ranges(s.args[0])) p->map.clear(a, b);
  } else if (s.sys == VMAT_SYS_BRK) {
    Proc* p = find(rec.hdr.pid);
    // The break went down: brk_munmap() unmapped the pages above it.
    if (p && s.brk < before->brk()) p->map.clear(page_up(s.brk), page_up(before->brk()));
  }
}

void RssModel::syscall(Proc& p, const vmat_syscall_event& s, const Layout*) {
  if (failed(s.ret)) return;
  const auto ret = static_cast<uint64_t>(s.ret);
  switch (s.sys) {
    case VMAT_SYS_MMAP:  // a new mapping (MAP_FIXED may replace pages): empty until faulted or scanned
      p.map.clear(ret, ret + page_up(s.args[1]));
      break;
    case VMAT_SYS_MUNMAP:
      p.map.clear(s.args[0] & kPageMask, page_up(s.args[0] + s.args[1]));
      break;
    case VMAT_SYS_MADVISE: {
      const uint64_t adv = s.args[2];
      if (adv == kMadvDontneed || adv == kMadvRemove || adv == kMadvDontneedLocked || adv == kMadvGuardInstall)
        p.map.clear(s.args[0] & kPageMask, page_up(s.args[0] + s.args[1]));
      break;
    }
    case VMAT_SYS_MREMAP: {
      const uint64_t old = s.args[0], old_len = page_up(s.args[1]), new_len = page_up(s.args[2]);
      if (old_len == 0) break;  // a second mapping of shared pages: nothing moved
      if (ret != old) {
        p.map.move(old, std::min(old_len, new_len), ret);
        p.map.clear(old, old + old_len);
      } else if (new_len < old_len) {
        p.map.clear(old + new_len, old + old_len);
      }
      break;
    }
    default:
      break;
  }
}

void RssModel::after_apply(const DecodedRecord& rec, const Layout* after) {
  switch (rec.type) {
    case VMAT_REC_RSS: {
      if (!rec.rss) return;
      Proc& p = procs_[rec.hdr.pid];
      const auto& r = *rec.rss;
      size_t i = 0;
      for (const auto& range : r.ranges) {
        size_t j = i;
        while (j < r.runs.size() && r.runs[j].start < range.end) j++;
        p.map.assign(range.start, range.end, std::span(r.runs).subspan(i, j - i));
        i = j;
      }
      p.last_scan_ts = rec.hdr.ts;
      p.kernel_rss = r.kernel_rss;
      scans_++;
      scan_cpu_ns_ += r.scan_ns;
      return;
    }
    case VMAT_EV_RSS_STAT:
      rss_stat(procs_[rec.hdr.pid], rec.rss_stat, after);
      return;
    case VMAT_EV_FAULT: {
      Proc* p = find(rec.hdr.pid);
      if (!p) return;
      // The one page the fault added to the kernel's counters (any other change came as rss_stat records).
      if ((rec.fault.flags & VMAT_FAULT_RSS_ONE) && p->counters_known)
        p->counters[VMAT_FAULT_RSS_MEMBER(rec.fault.flags)]++;
      if (!after) return;
      const Vma* v = after->find(rec.fault.addr);
      if (!v || !v->special.empty() || (v->flags & (VM_PFNMAP | VM_IO | VM_HUGETLB))) return;
      const bool write = (rec.fault.flags & VMAT_FAULT_NO_ERROR_CODE) || (rec.fault.error_code & kPfWrite);
      const uint64_t page = rec.fault.addr & kPageMask;
      uint64_t flags = VMAT_RSS_PRESENT;
      if (v->is_shared() || (v->is_file() && !write)) {
        flags |= VMAT_RSS_FILE;  // page cache or shmem, mapped as it is
      } else if (!write && v->is_anonymous() &&
                 !((rec.fault.flags & VMAT_FAULT_RSS_ONE) && VMAT_FAULT_RSS_MEMBER(rec.fault.flags) == VMAT_MM_ANON)) {
        // do_anonymous_page() maps the shared zero page on a read: counted
        // nowhere. Not where the kernel said (--rss) that the fault counted
        // an anonymous page: a kernel that does not map the zero page (the
        // 6.18 guest kernel CI runs on allocates a page on a read).
        flags = p->map.flags_at(page);
        if (!(flags & VMAT_RSS_PRESENT)) return;
      }
      p->map.set_page(page, flags);
      return;
    }
    case VMAT_EV_SYSCALL: {
      if (Proc* p = find(rec.hdr.pid)) syscall(*p, rec.sys, after);
      return;
    }
    case VMAT_EV_FORK: {
      if (rec.fork.flags & (VMAT_FORK_THREAD | VMAT_FORK_SHARED_VM)) return;
      auto it = procs_.find(rec.hdr.pid);
      Proc child;  // its counters come with its first rss_stat record
      if (it != procs_.end()) child.map = it->second.map.anon_copy();
      procs_[rec.fork.child_pid] = std::move(child);
      return;
    }
    case VMAT_EV_EXEC: {
      // A new mm. Its counters' base may have come already (the new image
      // is written after exec_mmap(), before this record): they stay.
      Proc& p = procs_[rec.hdr.pid];
      p.map = RssMap{};
      p.last_scan_ts = p.kernel_rss = 0;
      return;
    }
    case VMAT_EV_EXIT:
      if (rec.exit.flags & VMAT_EXIT_GROUP) forget(rec.hdr.pid);
      return;
    case VMAT_REC_LAYOUT: {
      // A seed or a resync: what lies outside the layout is gone.
      auto& p = procs_[rec.hdr.pid];
      if (after) p.map.clip_to(*after);
      return;
    }
    default:
      return;
  }
}

}  // namespace vmatrace
