#pragma once
// Joins each user stack record with the growth syscall it follows (same tid
// and enter_ts), measures the growth against the layout model, unwinds
// (VMAT_EV_USER_STACK: raw stack bytes) or takes the frames unwound at
// record time (VMAT_REC_STACK_FRAMES), symbolizes them and attributes it (core/
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
#include "sym/unwinder_cache.h"

namespace vmatrace {

class MallocTracker {
 public:
  // live: the traced processes exist, so open their files through
  // /proc/PID/root (containers); a recording opens the paths as they are.
  // all_source_lines: every frame gets its file:line (JSON, pprof);
  // otherwise only the call site does (text and the summary show no other),
  // and a module's DWARF is read only when a call site lies in it.
  explicit MallocTracker(bool live, bool all_source_lines = true, SymbolSources symbols = {})
      : all_source_lines_(all_source_lines), unwinders_(std::make_shared<UnwinderCache>(live, std::move(symbols))) {}
  // Sharing the unwinders with the recorder's StackFreezer (live).
  explicit MallocTracker(std::shared_ptr<UnwinderCache> unwinders, bool all_source_lines = true)
      : all_source_lines_(all_source_lines), unwinders_(std::move(unwinders)) {}

  // Names of JIT code (UnwinderCache::jit()).
  JitSymbols& jit() { return unwinders_->jit(); }

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
  std::vector<StackFrame> frames_of(const DecodedRecord& rec, const ProcessState& p);

  bool all_source_lines_;
  std::map<uint32_t, Pending> pending_;  // by tid
  std::shared_ptr<UnwinderCache> unwinders_;
};

}  // namespace vmatrace
