#include "trace/losses.h"

#include <algorithm>

namespace vmatrace {

void LossLedger::forget_ended(const DecodedRecord& d) {
  uint32_t pid = 0;
  uint64_t final_count = 0;
  if (d.type == VMAT_EV_EXIT && (d.exit.flags & VMAT_EXIT_GROUP)) {
    pid = d.hdr.pid;
    final_count = d.exit.lost;  // includes what was lost since the last check
  } else if (d.type == VMAT_EV_FORK && !(d.fork.flags & VMAT_FORK_THREAD)) {
    pid = d.fork.child_pid;  // a stale count, when the previous holder's exit record was lost
  } else {
    return;
  }
  auto it = seen_.find(pid);
  uint64_t seen = it == seen_.end() ? 0 : it->second;
  ended_ += std::max(seen, final_count);
  live_ -= seen;
  if (it != seen_.end()) seen_.erase(it);
}

bool LossLedger::any_new(const std::map<uint32_t, uint64_t>& kernel) const {
  for (const auto& [pid, n] : kernel) {
    auto it = seen_.find(pid);
    if (n > (it == seen_.end() ? 0 : it->second)) return true;
  }
  return false;
}

std::optional<uint64_t> LossLedger::take_new(uint32_t pid, uint64_t n) {
  uint64_t& seen = seen_[pid];
  if (n <= seen) return std::nullopt;
  uint64_t fresh = n - seen;
  seen = n;
  live_ += fresh;
  return fresh;
}

void LossLedger::forget(uint32_t pid) {
  auto it = seen_.find(pid);
  if (it == seen_.end()) return;
  ended_ += it->second;
  live_ -= it->second;
  seen_.erase(it);
}

uint64_t LossLedger::add_unread(uint32_t pid, uint64_t n) {
  unread_ += n;
  uint64_t& mine = unread_by_pid_[pid];
  mine += n;
  auto it = seen_.find(pid);
  return mine + (it == seen_.end() ? 0 : it->second);
}

uint64_t LossLedger::total() const { return ended_ + unread_ + live_; }

}  // namespace vmatrace
