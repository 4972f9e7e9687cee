#pragma once
// Where a recording's layouts are not exact. A loss record says a process's
// records may be missing from its since_ts on; its layout is exact again at
// the layout read after it (the resync), or never again when none follows
// (the loss was found at its exit, or was left unread at the end). Fed the
// records in recording order; asked for a pid and a moment (replay --at,
// --diff), it names the window that moment falls in.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "core/records.h"

namespace vmatrace {

class LossWindows {
 public:
  static constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();

  struct Window {
    uint32_t pid = 0;
    uint64_t from = 0;       // records after it may be missing
    uint64_t until = kOpen;  // the resync layout's ts; kOpen: none followed
    uint64_t lost = 0;       // records the loss records of the window count
  };

  // Loss and layout records matter; the others are ignored.
  void add(const DecodedRecord& d);
  // Whether a record of this type can matter (a cheap test before decoding).
  static bool wanted(uint32_t type) { return type == VMAT_REC_LOSS || type == VMAT_REC_LAYOUT; }
  // The window of pid that holds ts: the state after the records up to ts
  // may lack some (from < ts < until).
  std::optional<Window> at(uint32_t pid, uint64_t ts) const;
  bool empty() const { return windows_.empty(); }

 private:
  friend class Checkpoint;  // saves and restores the state below
  std::vector<Window> windows_;
  std::map<uint32_t, size_t> awaiting_resync_;  // pid -> its window in windows_
  std::map<uint32_t, uint64_t> last_layout_;    // pid -> ts of its last full layout
};

}  // namespace vmatrace
