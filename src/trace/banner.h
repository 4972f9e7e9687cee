#pragma once
// What a trace says on stderr: the banner when it starts, the summary line
// when it ends.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <vector>

#include "core/processor.h"
#include "trace/bpf_loader.h"
#include "trace/features.h"

namespace vmatrace {

// "vmatrace: tracing TARGET [and its children]; attach: F=M ... (loaded in X ms)"
std::string banner_text(const std::string& target, bool follow, const AttachPlan& plan, uint64_t attach_ns);

// "vmatrace: N records, C kind, ...; lost L [(R layout resyncs)][; M malformed records]"
std::string summary_text(const ProcessorStats& stats, const std::map<std::string, uint64_t>& counts, uint64_t lost,
                         uint64_t malformed);

// --bpf-stats: one line per program that ran ("name runs ns/run total"),
// most expensive first, under a heading line; with --faults=summary, a last
// line saying how the faults' VMAs were found.
std::string bpf_stats_text(const std::vector<ProgramStats>& stats, const std::optional<FaultVmaLookups>& lookups);
// The same as one JSON object: {"event":"bpf_stats","programs":[{"name",
// "run_cnt","run_time_ns","ns_per_run"}...][,"fault_vma_lookups":{"cache",
// "walk","find_vma","not_found"}]}.
std::string bpf_stats_json(const std::vector<ProgramStats>& stats, const std::optional<FaultVmaLookups>& lookups);

}  // namespace vmatrace
