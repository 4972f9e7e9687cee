#include "trace/banner.h"

#include <cstdio>

namespace vmatrace {

std::string banner_text(const std::string& target, bool follow, const AttachPlan& plan, uint64_t attach_ns) {
  std::string s = "vmatrace: tracing " + target + (follow ? " and its children" : "") + "; attach:";
  for (Family f : kAllFamilies) s += " " + family_name(f) + "=" + attach_mode_name(plan.mode(f));
  char ms[48];
  std::snprintf(ms, sizeof(ms), " (loaded in %.1f ms)", attach_ns / 1e6);
  s += ms;
  return s;
}

std::string summary_text(const ProcessorStats& stats, const std::map<std::string, uint64_t>& counts, uint64_t lost,
                         uint64_t malformed) {
  std::string s = "vmatrace: " + std::to_string(stats.records) + " records";
  for (const auto& [k, v] : counts) s += ", " + std::to_string(v) + " " + k;
  s += "; lost " + std::to_string(lost);
  if (stats.resyncs) s += " (" + std::to_string(stats.resyncs) + " layout resyncs)";
  if (malformed) s += "; " + std::to_string(malformed) + " malformed records";
  return s;
}

}  // namespace vmatrace
