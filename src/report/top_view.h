#pragma once
// The frames of `vmatrace top`: for one traced process, VSZ and RSS by kind
// as bars, the VMAs that grew most since the previous frame (resident and
// virtual size, faults per second), the malloc call sites that grew memory,
// and the last events. Pure text (width x height); the command draws it
// with ncurses or prints it (--batch). Fed as a sink of the pipeline: live
// (top) or from a recording (replay --top).

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/processor.h"
#include "core/rss_model.h"

namespace vmatrace {

class MallocReport;

enum class TopSort { kGrowth, kRss, kSize };
const char* top_sort_name(TopSort s);

class TopView : public RecordSink {
 public:
  // start_ts: the time frames count from (CLOCK_MONOTONIC ns).
  TopView(const Processor& proc, const RssModel* rss, uint64_t start_ts)
      : proc_(proc), rss_(rss), start_ts_(start_ts) {}

  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  bool wants_derived() const override { return false; }

  // The live processes with a known layout, by pid.
  std::vector<uint32_t> pids() const;
  // One frame of pid at `now` (CLOCK_MONOTONIC ns), at most width columns
  // and height lines. Starts the next interval: growth and fault rates are
  // since the previous frame. `status` goes on the first line (keys, pause).
  std::string frame(uint32_t pid, uint64_t now, size_t width, size_t height, TopSort sort, const MallocReport* malloc,
                    const std::string& status);
  // The VMA rows of the last frame: their start addresses, top to bottom,
  // and the line (from 0) the first one is on. A row picked by the user
  // (the lineage key) is looked up here.
  const std::vector<uint64_t>& shown_vmas() const { return shown_; }
  size_t first_vma_line() const { return first_vma_line_; }
  uint64_t start_ts() const { return start_ts_; }

 private:
  struct Event {  // the last events, formatted only when shown
    uint64_t ts = 0;
    uint32_t pid = 0, type = 0, sys = 0;
    int64_t ret = 0;
    uint64_t a0 = 0, a1 = 0;
  };
  struct Seen {                               // per process, since the previous frame
    std::map<uint64_t, uint64_t> rss_by_vma;  // VMA id -> RSS at the previous frame
    std::map<uint64_t, uint64_t> faults;      // VMA id -> faults since
    uint64_t last_frame = 0;
  };
  const Processor& proc_;
  const RssModel* rss_;
  std::map<uint32_t, Seen> seen_;
  std::array<Event, 64> events_{};
  size_t next_event_ = 0, event_count_ = 0;
  uint64_t start_ts_ = 0;
  std::vector<uint64_t> shown_;
  size_t first_vma_line_ = 0;
};

}  // namespace vmatrace
