#include "core/loss_windows.h"

namespace vmatrace {

void LossWindows::add(const DecodedRecord& d) {
  const uint32_t pid = d.hdr.pid;
  if (d.type == VMAT_REC_LAYOUT) {
    last_layout_[pid] = d.hdr.ts;
    if (auto it = awaiting_resync_.find(pid); it != awaiting_resync_.end()) {
      windows_[it->second].until = d.hdr.ts;
      awaiting_resync_.erase(it);
    }
    return;
  }
  if (d.type != VMAT_REC_LOSS || !d.loss) return;
  // A second loss before the resync (the layout could not be read) widens
  // the window it is in.
  if (auto it = awaiting_resync_.find(pid); it != awaiting_resync_.end()) {
    Window& w = windows_[it->second];
    w.lost += d.loss->lost;
    if (!d.loss->resync) awaiting_resync_.erase(it);  // none will come
    return;
  }
  Window w;
  w.pid = pid;
  // Not known (older files): from the last moment the layout was read whole.
  auto last = last_layout_.find(pid);
  w.from = d.loss->since_ts ? d.loss->since_ts : last == last_layout_.end() ? 0 : last->second;
  w.lost = d.loss->lost;
  windows_.push_back(w);
  if (d.loss->resync) awaiting_resync_[pid] = windows_.size() - 1;
}

std::optional<LossWindows::Window> LossWindows::at(uint32_t pid, uint64_t ts) const {
  for (const Window& w : windows_)
    if (w.pid == pid && w.from < ts && ts < w.until) return w;
  return std::nullopt;
}

}  // namespace vmatrace
