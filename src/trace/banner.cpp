#include "trace/banner.h"

#include <algorithm>
#include <cstdio>

#include "util/json.h"

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

namespace {

double ns_per_run(const ProgramStats& p) {
  return p.run_cnt ? static_cast<double>(p.run_time_ns) / static_cast<double>(p.run_cnt) : 0.0;
}

std::vector<ProgramStats> by_cost(std::vector<ProgramStats> stats) {
  std::stable_sort(stats.begin(), stats.end(),
                   [](const ProgramStats& a, const ProgramStats& b) { return a.run_time_ns > b.run_time_ns; });
  return stats;
}

}  // namespace

std::string bpf_stats_text(const std::vector<ProgramStats>& stats, const std::optional<FaultVmaLookups>& lookups) {
  std::string s = "vmatrace: BPF programs (--bpf-stats; runs in every process that hits the hook):\n";
  char line[160];
  std::snprintf(line, sizeof(line), "  %-28s %12s %10s %12s\n", "program", "runs", "ns/run", "total ms");
  s += line;
  for (const auto& p : by_cost(stats)) {
    std::snprintf(line, sizeof(line), "  %-28s %12llu %10.1f %12.3f\n", p.name.c_str(),
                  static_cast<unsigned long long>(p.run_cnt), ns_per_run(p), static_cast<double>(p.run_time_ns) / 1e6);
    s += line;
  }
  if (lookups) {
    std::snprintf(line, sizeof(line),
                  "  fault VMAs (--faults=summary): %llu cached, %llu by tree walk, %llu by bpf_find_vma, %llu not "
                  "found\n",
                  static_cast<unsigned long long>(lookups->cache), static_cast<unsigned long long>(lookups->walk),
                  static_cast<unsigned long long>(lookups->find_vma),
                  static_cast<unsigned long long>(lookups->not_found));
    s += line;
  }
  return s;
}

std::string bpf_stats_json(const std::vector<ProgramStats>& stats, const std::optional<FaultVmaLookups>& lookups) {
  std::string s;
  JsonWriter w(s);
  w.begin_object().plain_key("event").plain_value("bpf_stats").plain_key("programs").begin_array();
  for (const auto& p : by_cost(stats)) {
    w.begin_object().kv("name", p.name).kv("run_cnt", p.run_cnt).kv("run_time_ns", p.run_time_ns);
    w.key("ns_per_run").value(ns_per_run(p), "%.1f");
    w.end_object();
  }
  w.end_array();
  if (lookups) {
    w.plain_key("fault_vma_lookups").begin_object().kv("cache", lookups->cache).kv("walk", lookups->walk);
    w.kv("find_vma", lookups->find_vma).kv("not_found", lookups->not_found).end_object();
  }
  w.end_object();
  return s;
}

}  // namespace vmatrace
