// `vmatrace report FILE --html OUT.html`: the recording replayed through the
// Processor into the timeline model (report/html_report.h), written as one
// self-contained page.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands/commands.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "report/html_report.h"
#include "util/errors.h"
#include "util/safe_file.h"
#include "util/text.h"

namespace vmatrace {
namespace {

// The page file, created before the replay so a refusal (exists, symbolic
// link) costs nothing; removed again if the page is never written.
class PageFile {
 public:
  PageFile(const std::string& path, bool force) : path_(path) {
    OutputFileOptions o;
    o.force = force;
    fd_ = create_output_file(path, o);
  }
  PageFile(const PageFile&) = delete;
  PageFile& operator=(const PageFile&) = delete;
  ~PageFile() {
    if (!done_) ::unlink(path_.c_str());
  }
  void write(const std::string& page) {
    write_all(fd_.get(), page.data(), page.size(), path_);
    if (::close(fd_.release()) != 0) throw UserError("writing " + path_ + " failed: close");
    done_ = true;
  }

 private:
  std::string path_;
  UniqueFd fd_;
  bool done_ = false;
};

}  // namespace

int run_html_report(const ReportOptions& opts) {
  const std::string& out_path = *opts.html;
  if (out_path.empty()) throw UserError("--html needs an output file name, e.g. --html app.html");
  // Opened first: a recording that cannot be read must not leave an empty page behind.
  (void)open_recording(opts.path);
  PageFile out(out_path, opts.force);
  // Pass 1: the time range (the buckets need it before the first record).
  uint64_t base = 0, first = 0, last = 0;
  {
    RecordingReader reader = open_recording(opts.path);
    base = time_origin(opts.path);
    last = base;
    while (auto rec = reader.next()) {
      std::string err;
      auto d = decode_record(*rec, &err);
      if (!d || d->type == VMAT_REC_NOTE) continue;
      if (!first) first = d->hdr.ts;
      last = std::max<uint64_t>(last, d->hdr.ts);
    }
  }
  // Pass 2: the model.
  RecordingReader reader = open_recording(opts.path);
  TimelineBuilder builder;
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  pipeline.add_sink(&builder);
  // malloc growth from the recording's user stacks, exactly as `replay`.
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) { builder.on_malloc_growth(g); });
  builder.begin(base, first ? first : base, last, &pipeline.processor());
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (d.type != VMAT_REC_NOTE) builder.advance(d.hdr.ts);
    return true;
  });
  builder.set_finishing();
  pipeline.finish();
  TimelineModel model = builder.finish();
  model.file = opts.path;
  for (const auto& a : reader.header().command) model.command += (model.command.empty() ? "" : " ") + a;
  if (opts.perfetto) {
    // Linked from the page by a path relative to it (the two files travel together).
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = fs::absolute(out_path, ec).parent_path();
    fs::path rel = fs::absolute(*opts.perfetto, ec).lexically_relative(dir);
    model.perfetto = ec || rel.empty() ? *opts.perfetto : rel.string();
  }
  model.damaged = recording_damaged(reader);
  if (model.damaged) model.damage = reader.status().message;
  if (opts.pid) {
    std::erase_if(model.processes, [&](const ProcessTimeline& p) { return p.pid != *opts.pid; });
    std::erase_if(model.fault_hotspots, [&](const FaultReport::VmaRow& r) { return r.pid != *opts.pid; });
    if (model.processes.empty())
      throw UserError("pid " + std::to_string(*opts.pid) + " has no layout in " + opts.path +
                      " (see `vmatrace info` for its processes)");
  }

  std::string page = timeline_html(model);
  out.write(page);
  size_t segments = 0;
  for (const auto& p : model.processes) segments += p.segments.size();
  std::fprintf(stderr, "vmatrace: wrote %s (%s): %zu processes, %zu VMA segments, %llu records\n", out_path.c_str(),
               human_size(page.size()).c_str(), model.processes.size(), segments,
               static_cast<unsigned long long>(records));
  return damage_status(reader, "the page shows the " + std::to_string(records) + " records up to there");
}

}  // namespace vmatrace
