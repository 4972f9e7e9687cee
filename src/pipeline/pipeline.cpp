#include "pipeline/pipeline.h"

#include <cstring>
#include <map>
#include <string>

#include "output/printer.h"
#include "record/reader.h"
#include "report/malloc_report.h"
#include "sym/malloc_tracker.h"

namespace vmatrace {

class Pipeline::MallocStage : public Stage {
 public:
  MallocStage(bool live, bool all_source_lines, std::shared_ptr<UnwinderCache> unwinders, const SymbolSources& symbols,
              const std::vector<GrowthListener>& listeners)
      : tracker_(unwinders ? std::move(unwinders) : std::make_shared<UnwinderCache>(live, symbols), all_source_lines),
        listeners_(listeners) {}
  void before_apply(const DecodedRecord& rec, const Processor& proc) override { tracker_.before_apply(rec, proc); }
  MallocTracker& tracker() { return tracker_; }
  void after_apply(const DecodedRecord& rec, const Processor& proc) override {
    if (auto g = tracker_.after_apply(rec, proc))
      for (const auto& f : listeners_) f(rec, *g);
  }

 private:
  MallocTracker tracker_;
  const std::vector<GrowthListener>& listeners_;
};

class Pipeline::RssStage : public Stage {
 public:
  // Only syscalls need the layout before, and only faults, syscalls and
  // layouts the one after: no process lookup for the other records.
  void before_apply(const DecodedRecord& rec, const Processor& proc) override {
    if (rec.type == VMAT_EV_SYSCALL) model_.before_apply(rec, layout_of(proc, rec.hdr.pid));
  }
  void after_apply(const DecodedRecord& rec, const Processor& proc) override {
    const bool needs_layout = rec.type == VMAT_EV_FAULT || rec.type == VMAT_EV_SYSCALL || rec.type == VMAT_REC_LAYOUT ||
                              rec.type == VMAT_EV_RSS_STAT;
    model_.after_apply(rec, needs_layout ? layout_of(proc, rec.hdr.pid) : nullptr);
  }
  const RssModel& model() const { return model_; }

 private:
  static const Layout* layout_of(const Processor& proc, uint32_t pid) {
    const ProcessState* p = proc.process(pid);
    return p && p->seeded ? &p->layout : nullptr;
  }
  RssModel model_;
};

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

void Pipeline::enable_malloc(bool live, bool all_source_lines, std::shared_ptr<UnwinderCache> unwinders,
                             const SymbolSources& symbols) {
  if (malloc_) return;
  malloc_ = std::make_unique<MallocStage>(live, all_source_lines, std::move(unwinders), symbols, growth_listeners_);
  stages_.insert(stages_.begin(), malloc_.get());
}

void Pipeline::enable_rss() {
  if (rss_) return;
  rss_ = std::make_unique<RssStage>();
  stages_.push_back(rss_.get());
}

const RssModel* Pipeline::rss() const { return rss_ ? &rss_->model() : nullptr; }

std::optional<DecodedRecord> Pipeline::decode(std::span<const std::byte> rec) {
  std::string err;
  auto d = decode_record(rec, &err);
  if (!d) malformed_++;
  return d;
}

void Pipeline::apply(const DecodedRecord& rec) {
  for (auto* s : stages_) s->before_apply(rec, processor_);
  // A residency scan, a change of the kernel's resident counters or a JIT
  // map changes no layout and prints nothing: only the stages see it.
  if (rec.type != VMAT_REC_RSS && rec.type != VMAT_EV_RSS_STAT && rec.type != VMAT_REC_JIT_MAP)
    processor_.apply(rec, sinks_.target());
  for (auto* s : stages_) s->after_apply(rec, processor_);
}

bool Pipeline::feed(std::span<const std::byte> rec) {
  auto d = decode(rec);
  if (!d) return false;
  apply(*d);
  return true;
}

uint64_t Pipeline::run(RecordingReader& reader, const std::function<bool(const DecodedRecord&)>& before) {
  uint64_t records = 0;
  bool first = !resumed_;  // the first record of a process is applied anyway: the printer's time base
  while (auto rec = reader.next()) {
    auto d = decode(*rec);
    if (!d) continue;  // malformed record inside an intact chunk: skip it
    if (before && !before(*d)) break;
    records++;
    if (d->type == VMAT_REC_NOTE || d->type == VMAT_REC_FILE_DELETED || d->type == VMAT_REC_HOST_PATH) {
      apply(*d);
      continue;
    }
    if (only_pids_ && !first && !only_pids_->count(d->hdr.pid)) continue;
    first = false;
    apply(*d);
  }
  return records;
}

bool Pipeline::restore(std::span<const std::byte> state, Checkpoint::Restored& out, std::string* why) {
  Processor fresh;
  if (!Checkpoint::restore(state, fresh, out, why)) return false;
  const bool keep_ended = processor_.keep_ended();
  processor_ = std::move(fresh);
  processor_.set_keep_ended(keep_ended);
  resumed_ = true;
  return true;
}

namespace {

void add_jit_records(RecordingReader& reader, JitSymbols& jit) {
  while (auto rec = reader.next()) {
    if (rec->size() < sizeof(vmat_hdr)) continue;
    vmat_hdr h;
    std::memcpy(&h, rec->data(), sizeof(h));
    if (h.type != VMAT_REC_JIT_MAP) continue;  // no decoding of the rest
    std::string error;                         // a malformed one names nothing: the replay itself reports it
    auto d = decode_record(*rec, &error);
    if (d && d->jit_map) jit.add_record(d->hdr.pid, d->hdr.ts, d->jit_map->code);
  }
}

}  // namespace

void Pipeline::load_jit_symbols_when_needed(std::function<RecordingReader()> open) {
  if (!malloc_) return;
  malloc_->tracker().jit().load_recorded_on_first_find([open = std::move(open)](JitSymbols& jit) {
    RecordingReader reader = open();
    add_jit_records(reader, jit);
  });
}

std::set<uint32_t> pid_and_ancestors(RecordingReader& reader, uint32_t pid) {
  std::multimap<uint32_t, uint32_t> parents;  // child pid -> forking pid
  while (auto rec = reader.next()) {
    if (rec->size() < sizeof(vmat_hdr)) continue;
    vmat_hdr h;
    std::memcpy(&h, rec->data(), sizeof(h));
    if (h.type != VMAT_EV_FORK) continue;  // only forks: no decoding of the rest
    auto d = decode_record(*rec, nullptr);
    if (d && !(d->fork.flags & VMAT_FORK_THREAD)) parents.emplace(d->fork.child_pid, d->hdr.pid);
  }
  std::set<uint32_t> out{pid};
  std::vector<uint32_t> todo{pid};
  while (!todo.empty()) {
    uint32_t c = todo.back();
    todo.pop_back();
    auto [lo, hi] = parents.equal_range(c);
    for (auto it = lo; it != hi; ++it)
      if (out.insert(it->second).second) todo.push_back(it->second);
  }
  return out;
}

GrowthListener print_growth(Printer& printer) {
  // One field list reused across growths (views into g, encoded at once).
  return [&printer, fields = FieldList{}](const DecodedRecord& rec, const MallocGrowth& g) mutable {
    fields.clear();
    growth_fields(g, fields);
    printer.derived(rec, "malloc_growth", fields);
  };
}

}  // namespace vmatrace
