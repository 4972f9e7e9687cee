#pragma once
// Loss accounting: the kernel counts lost records per pid; this remembers
// how much of each count was already reported (as a loss record) and what
// the processes that have ended lost.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>

#include "core/records.h"

namespace vmatrace {

class LossLedger {
 public:
  // Loss counts are per pid, and a pid is reused once its process is gone:
  // what an ended process lost moves to the ended total, so that a later
  // process with the same pid starts from zero (the kernel deleted its
  // count at exit, and a new count below the old one would otherwise go
  // unreported). Call with every record.
  void forget_ended(const DecodedRecord& d);
  // Whether any of the kernel's counts (pid -> lost) has grown.
  bool any_new(const std::map<uint32_t, uint64_t>& kernel) const;
  // pid's count is now n: the records lost since the last report, which
  // are now reported, or std::nullopt when none.
  std::optional<uint64_t> take_new(uint32_t pid, uint64_t n);
  // pid's process ended (its exit record was lost, so forget_ended never
  // saw it): what it lost moves to the ended total.
  void forget(uint32_t pid);
  // n records of pid were left unread in the ring when tracing stopped:
  // lost too, but not by the kernel. Returns pid's total lost now.
  uint64_t add_unread(uint32_t pid, uint64_t n);
  // Everything lost so far, live and ended processes, unread included.
  uint64_t total() const;
  // The part of total() the kernel counted (its reservation failures).
  uint64_t dropped() const { return total() - unread_; }
  uint64_t unread() const { return unread_; }
  // The kernel's drop counter read at (after) ts equalled what was reported:
  // every record dropped before ts is in a loss record, so a drop found
  // later happened after ts. Called at each step that finds it so.
  void accounted_at(uint64_t ts) { accounted_ts_ = std::max(accounted_ts_, ts); }
  // Where a loss found now may start (LossRecord::since_ts): the last
  // moment every drop was accounted for (the start of tracing at first).
  uint64_t accounted_until() const { return accounted_ts_; }

 private:
  std::map<uint32_t, uint64_t> seen_;  // per live pid: losses already reported
  uint64_t live_ = 0;                  // the sum of seen_ (total() is read at every poll)
  uint64_t ended_ = 0;                 // losses of processes that have ended
  std::map<uint32_t, uint64_t> unread_by_pid_;
  uint64_t unread_ = 0;
  uint64_t accounted_ts_ = 0;
};

}  // namespace vmatrace
