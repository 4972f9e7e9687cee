#pragma once
// Where a recording lost records: its loss records (written by the tracer
// the moment it found a loss, before the resync) by process, with the first
// and the last moment. `info`, `report` and the HTML page all read them here,
// so they give the same total as the live summary and say where.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/records.h"

namespace vmatrace {

struct LossSite {
  uint32_t pid = 0;
  std::string comm;
  uint64_t lost = 0;                   // records lost by this process
  uint64_t times = 0;                  // loss records (each followed by a resync unless the process ended)
  uint64_t first_ts = 0, last_ts = 0;  // CLOCK_MONOTONIC ns
};

class LossLog {
 public:
  // Call with every record; only loss records count.
  void add(const DecodedRecord& d);
  uint64_t total() const { return total_; }
  // By pid, most records lost first.
  std::vector<LossSite> sites() const;
  // "lost N records: pid P (comm) N at +a s (K times, up to +b s); ..." one
  // line per process (at most max_lines, then how many more), times from
  // base_ts; "" when nothing was lost.
  std::string text(uint64_t base_ts, size_t max_lines = 10, const std::string& indent = "") const;

 private:
  std::map<uint32_t, LossSite> by_pid_;
  uint64_t total_ = 0;
};

}  // namespace vmatrace
