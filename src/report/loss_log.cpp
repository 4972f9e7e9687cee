#include "report/loss_log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "util/text.h"

namespace vmatrace {

void LossLog::add(const DecodedRecord& d) {
  if (d.type != VMAT_REC_LOSS || !d.loss) return;
  LossSite& s = by_pid_[d.hdr.pid];
  if (!s.times) {
    s.pid = d.hdr.pid;
    s.first_ts = d.hdr.ts;
  }
  // A loss found after the process was gone may carry no name: keep the one known.
  if (!d.comm.empty()) s.comm = d.comm;
  s.lost += d.loss->lost;
  s.times++;
  s.first_ts = std::min<uint64_t>(s.first_ts, d.hdr.ts);
  s.last_ts = std::max<uint64_t>(s.last_ts, d.hdr.ts);
  total_ += d.loss->lost;
}

std::vector<LossSite> LossLog::sites() const {
  std::vector<LossSite> out;
  out.reserve(by_pid_.size());
  for (const auto& [pid, s] : by_pid_) out.push_back(s);
  std::stable_sort(out.begin(), out.end(), [](const LossSite& a, const LossSite& b) { return a.lost > b.lost; });
  return out;
}

std::string LossLog::text(uint64_t base_ts, size_t max_lines, const std::string& indent) const {
  if (!total_) return "";
  auto rel = [&](uint64_t ts) { return ts > base_ts ? static_cast<double>(ts - base_ts) / 1e9 : 0.0; };
  std::string out;
  char line[256];
  const auto all = sites();
  for (size_t i = 0; i < all.size() && i < max_lines; i++) {
    const auto& s = all[i];
    if (s.times == 1)
      std::snprintf(line, sizeof(line), "%spid %u (%s): %" PRIu64 " records lost at +%.3f s\n", indent.c_str(), s.pid,
                    escape_text(s.comm).c_str(), s.lost, rel(s.first_ts));
    else
      std::snprintf(line, sizeof(line),
                    "%spid %u (%s): %" PRIu64 " records lost %" PRIu64 " times, +%.3f s to +%.3f s\n", indent.c_str(),
                    s.pid, escape_text(s.comm).c_str(), s.lost, s.times, rel(s.first_ts), rel(s.last_ts));
    out += line;
  }
  if (all.size() > max_lines) out += indent + "... and " + std::to_string(all.size() - max_lines) + " more processes\n";
  return out;
}

}  // namespace vmatrace
