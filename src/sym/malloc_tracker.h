#pragma once
// Joins each VMAT_EV_USER_STACK record with the growth syscall it follows
// (same tid and enter_ts), measures the growth against the layout model,
// unwinds and symbolizes the stack and attributes it (core/
// malloc_attribution.h). It is the Pipeline's malloc stage
// (pipeline/pipeline.h), live and over a recording (replay, report
// --malloc, --html), so all of them see the same growths.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "core/malloc_attribution.h"
#include "core/processor.h"
#include "core/records.h"
#include "sym/unwinder.h"

namespace vmatrace {

class MallocTracker {
 public:
  // live: the traced processes exist, so open their files through
  // /proc/PID/root (containers); a recording opens the paths as they are.
  explicit MallocTracker(bool live) : live_(live) {}

  // Call with every record, before and after the Processor applies it.
  void before_apply(const DecodedRecord& rec, const Processor& proc);
  // The growth a user stack record completes, if it grew memory.
  std::optional<MallocGrowth> after_apply(const DecodedRecord& rec, const Processor& proc);

 private:
  struct Pending {
    vmat_syscall_event sys{};
    uint64_t brk_before = 0;
    bool was_writable = false;  // mprotect: the range allowed writes before
  };
  Unwinder& unwinder_for(const ProcessState& p);

  bool live_;
  std::map<uint32_t, Pending> pending_;  // by tid
  FrameCache frames_;                    // shared by the unwinders below (declared first: outlives them)
  struct CachedUnwinder {
    std::unique_ptr<Unwinder> unwinder;
    const Layout* layout = nullptr;  // the model it was built from
    uint64_t file_generation = 0;    // and that model's Layout::file_generation() then
  };
  std::map<uint32_t, CachedUnwinder> unwinders_;  // by pid
};

}  // namespace vmatrace
