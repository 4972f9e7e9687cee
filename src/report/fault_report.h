#pragma once
// Page-fault hotspots: where faults land (VMAs, coalesced address ranges),
// who causes them (code locations, threads, processes) and when (a
// histogram over time). One pure class, no BPF: it is a RecordSink of the
// Processor for stream records (live `trace --summary` and offline
// `report --faults` run the same code on the same records, so they print the
// same numbers), and it also takes the in-kernel aggregates of
// `--faults=summary` through add_*().

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/processor.h"

namespace vmatrace {

struct FaultCounts {
  uint64_t faults = 0;
  uint64_t read = 0, write = 0, exec = 0;  // from the x86 error code
  uint64_t major = 0, minor = 0;           // from the kernel's accounting (0/0 when unknown)
  void add(const FaultCounts& o);
  // One fault as a vmat_fault_event describes it (error_code, flags).
  static FaultCounts of(uint32_t error_code, uint32_t flags);
};

// Where an ip is, as a person reads it: "libc.so.6+0x1234" (file offset),
// "[vdso]+0x9a0", "[heap]+0x10", "anon@7f12a000+0x40", "[kernel]" for a
// fault the kernel's own code took on a user address, or the bare address.
// The one place that formats code locations (symbolization would go here).
std::string code_location(uint64_t ip, const Vma* vma, const Layout* layout);

// A VMA's name as the report shows it: its path or [heap]/[stack]/[vdso],
// or "anon 7f..-7f.." with its range.
std::string vma_label(const std::string& name, uint64_t start, uint64_t end);

struct FaultReportOptions {
  std::optional<uint32_t> pid;         // only this process
  uint64_t interval_ns = 100'000'000;  // timeline bucket
  size_t top = 20;                     // rows per ranking (0: all)
};

class FaultReport : public RecordSink {
 public:
  explicit FaultReport(FaultReportOptions opts = {});

  // Stream mode: every VMAT_EV_FAULT record, with the VMA the Processor put
  // it in and the process's layout at that moment.
  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;

  // Summary mode (kernel aggregates). `name` as Layout::name_of() gives it.
  void set_start_ts(uint64_t ts) { start_ts_ = ts; }
  void add_vma(uint32_t pid, const std::string& comm, uint64_t start, uint64_t end, const std::string& name,
               const std::string& perms, const FaultCounts& c);
  void add_unattributed(uint32_t pid, const std::string& comm, const FaultCounts& c);
  void add_page(uint32_t pid, uint64_t page_addr, uint64_t vma_start, uint64_t count);
  void add_ip(uint32_t pid, uint64_t ip, const std::string& location, const FaultCounts& c);
  void add_thread(uint32_t pid, uint32_t tid, const std::string& comm, const FaultCounts& c);
  // Notes for the output: "major/minor from perf events", drops, mode.
  void set_majmin_known(bool v) { majmin_known_ = v; }
  void set_mode(const std::string& m) { mode_ = m; }
  void add_dropped(uint64_t n) { dropped_ += n; }

  const FaultCounts& total() const { return total_; }
  uint64_t attributed() const { return attributed_; }

  struct VmaRow {
    uint32_t pid = 0;
    uint64_t start = 0, end = 0;
    std::string name;  // path, [heap], [stack], [vdso], "" for anonymous
    std::string perms;
    FaultCounts c;
  };
  struct RangeRow {
    uint32_t pid = 0;
    uint64_t start = 0, end = 0;  // page aligned
    uint64_t faults = 0;
    std::string vma;  // label of the VMA the range is in
  };
  struct IpRow {
    uint32_t pid = 0;
    uint64_t ip = 0;
    std::string location;
    FaultCounts c;
  };
  struct ThreadRow {
    uint32_t pid = 0, tid = 0;
    std::string comm;
    FaultCounts c;
  };
  struct Bucket {
    uint64_t index = 0;  // (ts - start) / interval
    FaultCounts c;
  };
  // Rankings, most faults first (ties: by address), cut to opts.top.
  std::vector<VmaRow> by_vma() const;
  std::vector<RangeRow> by_range() const;
  std::vector<IpRow> by_ip() const;
  std::vector<ThreadRow> by_thread() const;
  std::vector<ThreadRow> by_process() const;  // tid 0
  std::vector<Bucket> timeline() const;       // in time order, empty buckets included

  std::string text() const;
  std::string json() const;    // one object, no newline
  std::string folded() const;  // "comm;code object;code location;faulted VMA count" lines

 private:
  using Key = std::pair<uint32_t, uint64_t>;  // (pid, VMA identity / ip / tid)
  bool wanted(uint32_t pid) const { return !opts_.pid || *opts_.pid == pid; }
  void note_process(uint32_t pid, const std::string& comm, const FaultCounts& c);
  template <typename T>
  std::vector<T> cut(std::vector<T> v) const;

  FaultReportOptions opts_;
  uint64_t start_ts_ = 0;
  FaultCounts total_;
  uint64_t attributed_ = 0;
  uint64_t dropped_ = 0;
  bool majmin_known_ = false;
  std::string mode_ = "stream";
  std::map<Key, VmaRow> vmas_;  // stream: keyed by Vma::id; summary: by start
  // Per process, page address -> (faults, VMA key): adjacent pages of one
  // VMA coalesce into ranges at output.
  std::map<uint32_t, std::map<uint64_t, std::pair<uint64_t, uint64_t>>> pages_;
  std::map<Key, IpRow> ips_;
  std::map<uint32_t, ThreadRow> threads_;
  std::map<uint32_t, ThreadRow> procs_;
  std::map<uint64_t, FaultCounts> buckets_;
  std::map<std::string, uint64_t> folded_;  // folded stack -> faults
};

}  // namespace vmatrace

namespace vmatrace {}  // namespace vmatrace
