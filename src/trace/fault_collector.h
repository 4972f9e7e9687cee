#pragma once
// --faults=summary: the kernel counts page faults in its maps; this stage
// moves those counts into the FaultReport, naming their VMAs from the
// layout model. A process's counts are taken just before its exit record is
// applied, while its layout is still there to name them.

#include <cstdint>
#include <optional>

#include "pipeline/pipeline.h"
#include "report/fault_report.h"
#include "trace/bpf_loader.h"

namespace vmatrace {

class FaultSummaryCollector : public Stage {
 public:
  FaultSummaryCollector(BpfTracer& tracer, FaultReport& report) : tracer_(tracer), report_(report) {}

  void before_apply(const DecodedRecord& rec, const Processor& proc) override;
  // Moves the kernel's aggregates of pid (all when nullopt) into the report
  // and deletes them from the maps.
  void collect(const Processor& proc, std::optional<uint32_t> pid);

 private:
  BpfTracer& tracer_;
  FaultReport& report_;
  uint64_t dropped_seen_ = 0;  // keys dropped, already reported
};

}  // namespace vmatrace
