#pragma once
// What a trace says on stderr: the banner when it starts, the summary line
// when it ends.

#include <cstdint>
#include <map>
#include <string>

#include "core/processor.h"
#include "trace/features.h"

namespace vmatrace {

// "vmatrace: tracing TARGET [and its children]; attach: F=M ... (loaded in X ms)"
std::string banner_text(const std::string& target, bool follow, const AttachPlan& plan, uint64_t attach_ns);

// "vmatrace: N records, C kind, ...; lost L [(R layout resyncs)][; M malformed records]"
std::string summary_text(const ProcessorStats& stats, const std::map<std::string, uint64_t>& counts, uint64_t lost,
                         uint64_t malformed);

}  // namespace vmatrace
