#pragma once
// The residency scans behind --rss: which ranges of each traced process
// changed (from the records), and, at a bounded rate, a PAGEMAP_SCAN (or,
// before 6.7, a read of /proc/PID/pagemap) of those ranges (and of the whole address space now and then, for what no
// event shows: reclaim, swap, khugepaged, KSM), turned into VMAT_REC_RSS
// records for the stream. docs/rss.md has the design.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/records.h"
#include "util/last_found.h"

namespace vmatrace {

// How a scan reads residency: the PAGEMAP_SCAN ioctl (6.7+: runs of pages,
// holes skipped), or reading /proc/PID/pagemap (every kernel: one 8-byte
// word per page of the process's VMAs, bounded per scan).
enum class RssScanMethod { kPagemapScan, kPagemapRead };
const char* rss_scan_method_name(RssScanMethod m);  // "pagemap_scan", "pagemap"

struct RssScanOptions {
  uint64_t interval_ns = 100'000'000;  // changed ranges: at most this often per process
  uint64_t full_every = 20;            // a whole-address-space scan every this many intervals
  RssScanMethod method = RssScanMethod::kPagemapScan;
  // kPagemapRead: the most pages one whole-address-space scan reads (8 bytes
  // each); a larger address space is covered over several scans, each
  // recording the ranges it read.
  uint64_t full_page_budget = 1u << 20;
};

class RssScanner {
 public:
  explicit RssScanner(RssScanOptions o) : opts_(o) {}

  // "" when the PAGEMAP_SCAN ioctl works here (6.7+), else why not.
  static std::string probe();
  // "" when /proc/PID/pagemap can be read with page frame numbers (root:
  // the zero page is told apart by its frame), else why not.
  static std::string probe_pagemap_read();

  // What this record may have changed that the events do not tell exactly.
  void note(const DecodedRecord& d);
  // Whether pid has ranges waiting for a scan.
  bool pending(uint32_t pid) const;
  // Whether a scan of some process is due at `now`.
  bool due(uint64_t now) const;
  // Scans what is due for the live processes `pids`; one record per process
  // scanned. `now` is the records' timestamp.
  std::vector<std::vector<std::byte>> scan(uint64_t now, const std::vector<std::pair<uint32_t, std::string>>& pids);

  uint64_t scans() const { return scans_; }
  uint64_t cpu_ns() const { return cpu_ns_; }

 private:
  struct Proc {
    std::map<uint64_t, uint64_t> dirty;  // start -> end, disjoint
    bool full = true;                    // the whole address space needs a scan
    uint64_t last_scan = 0, last_full = 0;
    uint64_t last_window = ~uint64_t{0};  // the fault window marked last (cheap repeat check)
    uint64_t full_cursor = 0;             // kPagemapRead: where the unfinished whole scan goes on
    // Fault windows since the last scan, each with its last fault's time
    // (rss_scanner.cpp, kFaultInstallGraceNs); overflow: too many to keep.
    std::vector<std::pair<uint64_t, uint64_t>> faulted;
    bool faulted_overflow = false;
  };
  // kPagemapRead: the ranges of p to read now (the changed ones and the next
  // part of a whole scan, inside the VMAs of /proc/PID/maps); sets `full`
  // when this scan finishes the whole address space.
  std::vector<vmat_rss_range> pagemap_ranges(uint32_t pid, Proc& p, bool want_full, bool& full);
  void mark(Proc& p, uint64_t start, uint64_t end);
  Proc* find(uint32_t pid);  // cached: records come in runs of one process
  void forget(uint32_t pid);
  bool due(const Proc& p, uint64_t now) const;

  RssScanOptions opts_;
  std::map<uint32_t, Proc> procs_;
  LastFound<Proc> last_;
  uint64_t scans_ = 0, cpu_ns_ = 0;
};

// One process's ranges through PAGEMAP_SCAN into a record payload. Throws
// std::system_error (ESRCH when the process is gone).
RssScanRecord pagemap_scan(pid_t pid, const std::vector<vmat_rss_range>& ranges);
// The same from /proc/PID/pagemap's words (bit 63 present, 62 swapped, 61
// file or shared, bits 0-54 the frame: the zero page's frames are not
// resident for smaps). No huge-page flag: pagemap does not tell.
RssScanRecord pagemap_read(pid_t pid, const std::vector<vmat_rss_range>& ranges);
// Pure: pagemap words for the pages from `start` on, appended to runs.
// zero_pfn / huge_zero_pfn (0: unknown): the zero page's frames.
void pagemap_words_to_runs(uint64_t start, std::span<const uint64_t> words, uint64_t zero_pfn, uint64_t huge_zero_pfn,
                           std::vector<vmat_rss_run>& runs);

}  // namespace vmatrace
