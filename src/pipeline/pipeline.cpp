#include "pipeline/pipeline.h"

#include <string>

#include "output/printer.h"
#include "record/reader.h"
#include "report/malloc_report.h"
#include "sym/malloc_tracker.h"

namespace vmatrace {

class Pipeline::MallocStage : public Stage {
 public:
  MallocStage(bool live, const std::vector<GrowthListener>& listeners) : tracker_(live), listeners_(listeners) {}
  void before_apply(const DecodedRecord& rec, const Processor& proc) override { tracker_.before_apply(rec, proc); }
  void after_apply(const DecodedRecord& rec, const Processor& proc) override {
    if (auto g = tracker_.after_apply(rec, proc))
      for (const auto& f : listeners_) f(rec, *g);
  }

 private:
  MallocTracker tracker_;
  const std::vector<GrowthListener>& listeners_;
};

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

void Pipeline::enable_malloc(bool live) {
  if (malloc_) return;
  malloc_ = std::make_unique<MallocStage>(live, growth_listeners_);
  stages_.insert(stages_.begin(), malloc_.get());
}

std::optional<DecodedRecord> Pipeline::decode(std::span<const std::byte> rec) {
  std::string err;
  auto d = decode_record(rec, &err);
  if (!d) malformed_++;
  return d;
}

void Pipeline::apply(const DecodedRecord& rec) {
  for (auto* s : stages_) s->before_apply(rec, processor_);
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
  while (auto rec = reader.next()) {
    auto d = decode(*rec);
    if (!d) continue;  // malformed record inside an intact chunk: skip it
    if (before && !before(*d)) break;
    records++;
    apply(*d);
  }
  return records;
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
