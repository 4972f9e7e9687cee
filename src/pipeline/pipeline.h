#pragma once
// The one path every record takes, live or from a recording:
//
//   bytes -> decode -> stages.before -> Processor::apply -> sinks -> stages.after
//
// Session (live), replay, report --faults/--malloc/--html and lineage all
// build one Pipeline and feed it; what differs between them is only which
// stages and sinks they add. That is what makes replay print what live
// tracing printed.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "core/checkpoint.h"
#include "core/malloc_attribution.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/rss_model.h"
#include "sym/unwinder.h"

namespace vmatrace {

class MallocTracker;
class UnwinderCache;
class Printer;
class RecordingReader;

// Work around the Processor: sees each record before it is applied (the
// layout as it was) and after (the layout as it is now).
class Stage {
 public:
  virtual ~Stage() = default;
  virtual void before_apply(const DecodedRecord&, const Processor&) {}
  virtual void after_apply(const DecodedRecord&, const Processor&) {}
};

// Feeds each applied record to every sink, in the order they were added.
class SinkFanout : public RecordSink {
 public:
  void add(RecordSink* s) { sinks_.push_back(s); }
  bool empty() const { return sinks_.empty(); }
  // What to hand the Processor: null for none, the sink itself for one
  // (no extra indirection per record), else this fan-out.
  RecordSink* target() { return sinks_.empty() ? nullptr : sinks_.size() == 1 ? sinks_[0] : this; }

  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override {
    for (auto* s : sinks_) s->on_record(rec, applied, proc);
  }
  void on_process_end(const ProcessState& p) override {
    for (auto* s : sinks_) s->on_process_end(p);
  }
  bool wants_derived() const override {
    for (auto* s : sinks_)
      if (s->wants_derived()) return true;
    return false;
  }

 private:
  std::vector<RecordSink*> sinks_;
};

// A malloc growth found by the malloc stage, with the record that completed it.
using GrowthListener = std::function<void(const DecodedRecord&, const MallocGrowth&)>;

class Pipeline {
 public:
  Pipeline();
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  Processor& processor() { return processor_; }
  const Processor& processor() const { return processor_; }

  // Sinks see every applied record (and every process end), in this order.
  void add_sink(RecordSink* sink) { sinks_.add(sink); }
  // Stages run in this order, before and after the Processor.
  void add_stage(Stage* stage) { stages_.push_back(stage); }
  // The malloc stage (MallocTracker): attributes heap/mmap growth to the
  // allocator call from the user stack records. live: the traced processes
  // exist (their files are opened through /proc/PID/root). Runs first of
  // the stages; listeners hear each growth in the order added. unwinders:
  // shared with the recorder's StackFreezer (null: its own, with these
  // symbol sources). all_source_lines: every frame's file:line is looked up
  // (JSON, exports); false: only the call site's (text output and the
  // summaries show no other, and libdw then reads a module's DWARF only for
  // a call site in it).
  void enable_malloc(bool live, bool all_source_lines = true, std::shared_ptr<UnwinderCache> unwinders = nullptr,
                     const SymbolSources& symbols = {});
  bool malloc_enabled() const { return malloc_ != nullptr; }
  // Offline, before run(): the JIT code names of the recording (its
  // jit_map records, written after the growths they name) for the malloc
  // stage, deferred: the pass over the recording `open` gives is made when
  // the malloc stage first looks a frame up among JIT names (a frame in no
  // file), if ever.
  void load_jit_symbols_when_needed(std::function<RecordingReader()> open);
  void on_malloc_growth(GrowthListener f) { growth_listeners_.push_back(std::move(f)); }
  // The residency stage (RssModel): resident pages per process from the
  // rss_scan records and the events between them. Runs after the others.
  void enable_rss();
  const RssModel* rss() const;

  // Decodes one record; std::nullopt (counted in malformed()) when it does
  // not decode. The result may point into `rec`: keep the bytes alive.
  std::optional<DecodedRecord> decode(std::span<const std::byte> rec);
  // Stages, Processor, sinks: one record through the whole pipeline.
  void apply(const DecodedRecord& rec);
  // decode() then apply(); false when the record was malformed.
  bool feed(std::span<const std::byte> rec);
  // End of the stream: processes still alive end at the sinks.
  void finish() { processor_.finish(sinks_.target()); }

  // Every record of `reader` through the pipeline. `before` (optional) sees
  // each decoded record first and returns false to stop there (the record
  // is then not applied). Returns how many records were applied.
  uint64_t run(RecordingReader& reader, const std::function<bool(const DecodedRecord&)>& before = {});
  // Before run(), on a Pipeline that has applied nothing: its Processor as a
  // checkpoint saved it (core/checkpoint.h); run() then goes on as it would
  // have after the records before the checkpoint. false (why set, nothing
  // changed) when the state does not restore.
  bool restore(std::span<const std::byte> state, Checkpoint::Restored& out, std::string* why);
  // Only these processes' records are applied (and notes, file deletions:
  // records of no process); the others are read, shown to run()'s `before`,
  // and dropped. For a `--pid` replay: the pid and every process that may
  // have forked it (a child's layout is its parent's at the fork), see
  // pid_and_ancestors().
  void only_pids(std::set<uint32_t> pids) { only_pids_ = std::move(pids); }

  uint64_t malformed() const { return malformed_; }

 private:
  class MallocStage;
  class RssStage;

  Processor processor_;
  SinkFanout sinks_;
  std::vector<Stage*> stages_;
  std::unique_ptr<MallocStage> malloc_;
  std::unique_ptr<RssStage> rss_;
  std::vector<GrowthListener> growth_listeners_;
  uint64_t malformed_ = 0;
  std::optional<std::set<uint32_t>> only_pids_;
  bool resumed_ = false;  // restore(): the stream's first record was applied before it
};

// `pid` and the processes whose forks may have made it (and theirs), from a
// pass over the fork records of `reader`: with pid reuse, every process
// that ever forked a child of that pid.
std::set<uint32_t> pid_and_ancestors(RecordingReader& reader, uint32_t pid);

// A listener that prints each growth under its record (the malloc_growth
// event), as live tracing and replay both do.
GrowthListener print_growth(Printer& printer);

}  // namespace vmatrace
