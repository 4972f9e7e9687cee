#pragma once
// `report --rss`: where resident memory grew between two moments. For each
// process: its total RSS before and after, the growth by kind of VMA, the
// VMAs ranked by resident growth, and the growth by what created each range
// (the malloc call site whose growth syscall made it, else the syscall:
// "mmap /path", "brk", "mremap", ...; "(before the trace)" for what the
// first layout already held). Fed by the command: snapshots of the layouts
// and the residency model at the two moments, and the records in between
// for the creators.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/malloc_attribution.h"
#include "core/processor.h"
#include "core/rss_model.h"

namespace vmatrace {

struct RssReportOptions {
  std::optional<uint32_t> pid;
  size_t top = 20;     // rows per ranking (0: all)
  bool since = false;  // a first moment is given: processes that end before it are left out
};

class RssReport : public RecordSink {
 public:
  explicit RssReport(RssReportOptions o, const RssModel& model) : opts_(o), model_(model) {}

  // Labels ranges with the syscall that created them (as a sink).
  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  // The state at the process's end, if the end comes before the second moment.
  void on_process_end(const ProcessState& p) override;
  bool wants_derived() const override { return false; }
  // A malloc growth: its range was made by this call site.
  void on_growth(const MallocGrowth& g);

  // The moments: the state of every process now.
  void snapshot_before(const Processor& proc, uint64_t ts);
  void snapshot_after(const Processor& proc, uint64_t ts);

  std::string text(uint64_t base_ts) const;
  std::string json() const;
  bool empty() const { return after_.empty(); }

 private:
  struct Labels {  // start -> (end, label index), disjoint
    std::map<uint64_t, std::pair<uint64_t, uint32_t>> ranges;
    void set(uint64_t start, uint64_t end, uint32_t label);
  };
  struct Snap {
    uint64_t ts = 0;
    std::string comm, exe;
    Layout layout;
    RssMap rss;
    std::optional<KernelRss> kernel;  // the kernel's counters then (rss_stat)
    Labels labels;
  };
  struct Row {
    std::string what;
    int64_t growth = 0;
    uint64_t before = 0, after = 0;
  };
  struct ProcResult {
    uint32_t pid = 0;
    std::string comm;
    uint64_t t0 = 0, t1 = 0;
    // The kernel's totals where its counters are known at both moments,
    // else the sum of what the VMAs hold.
    uint64_t rss_before = 0, rss_after = 0, anon_after = 0, swap_after = 0;
    uint64_t placed_after = 0;  // the sum of the VMAs' Rss at the second moment
    std::optional<KernelRss> kernel_before, kernel_after;
    std::vector<Row> kinds, vmas, sites;
  };
  uint32_t label_id(const std::string& s);
  Snap take(const ProcessState& p, uint64_t ts) const;
  std::vector<ProcResult> results() const;

  RssReportOptions opts_;
  const RssModel& model_;
  std::map<uint32_t, Labels> labels_;  // live, per process
  std::vector<std::string> label_names_;
  std::map<std::string, uint32_t> label_ids_;
  std::map<uint32_t, Snap> before_, after_;
  bool after_taken_ = false, before_taken_ = false;
};

}  // namespace vmatrace
