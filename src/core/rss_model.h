#pragma once
// Resident memory per VMA, rebuilt from the record stream: one map per
// process of the runs of pages the model believes resident or swapped.
// Residency scans (VMAT_REC_RSS) replace what they cover; between scans the
// events keep it current: a fault maps its page, munmap/madvise(DONTNEED)
// drop pages, mremap moves them, fork copies the anonymous ones, exec and
// exit clear. What events cannot see (fault-around neighbours, reclaim,
// swap, khugepaged) waits for the next scan of that range. Pure: no I/O,
// the same for live tracing and replay. docs/rss.md has the design.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "core/layout.h"
#include "core/records.h"
#include "util/last_found.h"

namespace vmatrace {

// Bytes of a range, by kind, as /proc/PID/smaps counts them.
struct Residency {
  uint64_t rss = 0;   // resident (smaps "Rss")
  uint64_t anon = 0;  // resident anonymous pages (smaps "Anonymous")
  uint64_t swap = 0;  // swapped out (smaps "Swap")
  Residency& operator+=(const Residency& o) {
    rss += o.rss;
    anon += o.anon;
    swap += o.swap;
    return *this;
  }
  bool operator==(const Residency&) const = default;
};

// The resident runs of one address space.
class RssMap {
 public:
  struct Run {
    uint64_t end;
    uint64_t flags;  // VMAT_RSS_*
  };
  // [start, end) now holds exactly `runs` (sorted, disjoint, inside it).
  void assign(uint64_t start, uint64_t end, std::span<const vmat_rss_run> runs);
  void clear(uint64_t start, uint64_t end);
  // One page (page aligned) is now present with these flags.
  void set_page(uint64_t page, uint64_t flags);
  uint64_t flags_at(uint64_t addr) const;  // 0: not known resident
  // mremap: what was at [from, from + len) is now at [to, to + len).
  void move(uint64_t from, uint64_t len, uint64_t to);
  // Keeps only what lies inside the layout's VMAs (after a resync or shmdt).
  void clip_to(const Layout& l);
  Residency sum(uint64_t start, uint64_t end) const;
  // A copy holding only the anonymous runs (fork: copy_page_range() copies
  // the PTEs of VMAs with anonymous pages; file pages fault in again).
  RssMap anon_copy() const;
  size_t runs() const { return runs_.size(); }
  const std::map<uint64_t, Run>& data() const { return runs_; }

 private:
  void insert_merged(uint64_t start, uint64_t end, uint64_t flags);
  std::map<uint64_t, Run> runs_;  // start -> run, disjoint
};

// Residency of one VMA as smaps reports it (VM_PFNMAP/VM_IO/VM_HUGETLB
// count nothing there).
Residency vma_residency(const RssMap& m, const Vma& v);

// The kernel's resident counters of one process (the rss_stat records:
// /proc/PID/status's RssFile, RssAnon, VmSwap, RssShmem), bytes.
struct KernelRss {
  uint64_t file = 0, anon = 0, swap = 0, shmem = 0;
  uint64_t rss() const { return file + anon + shmem; }  // VmRSS
  bool operator==(const KernelRss&) const = default;
};

class RssModel {
 public:
  // Before the Processor applies rec (layout as it was), and after (as it is).
  void before_apply(const DecodedRecord& rec, const Layout* before);
  void after_apply(const DecodedRecord& rec, const Layout* after);

  const RssMap* map(uint32_t pid) const;
  // Last scan of pid: its time, the kernel's VmRSS then; 0 when none.
  uint64_t last_scan_ts(uint32_t pid) const;
  uint64_t last_kernel_rss(uint32_t pid) const;
  // The kernel's counters of pid as its rss_stat records and faults tell
  // them (exact where the tracepoint is attached); nullopt before its first
  // VMAT_RSS_STAT_BASE record (a recording without them, a process that has
  // changed nothing since the trace began).
  std::optional<KernelRss> kernel_counters(uint32_t pid) const;
  uint64_t scans() const { return scans_; }
  uint64_t scan_cpu_ns() const { return scan_cpu_ns_; }

 private:
  struct Proc {
    RssMap map;
    uint64_t last_scan_ts = 0, kernel_rss = 0;
    std::array<int64_t, VMAT_MM_COUNTERS> counters{};  // pages, valid when counters_known
    bool counters_known = false;
    uint64_t mm_key = 0;  // of the base the counters count from
  };
  void syscall(Proc& p, const vmat_syscall_event& s, const Layout* after);
  void rss_stat(Proc& p, const vmat_rss_stat_event& e, const Layout* after);
  Proc* find(uint32_t pid);  // the last one found is cached: records come in runs of one process
  void forget(uint32_t pid);
  std::map<uint32_t, Proc> procs_;
  LastFound<Proc> last_;
  uint64_t scans_ = 0, scan_cpu_ns_ = 0;
};

}  // namespace vmatrace
