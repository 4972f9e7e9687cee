// `vmatrace report FILE --pprof OUT.pb.gz [--faults]`: the recording's
// malloc growth (and page faults) as a pprof profile (report/pprof_profile.h),
// through the same Pipeline and malloc stage as `report --malloc`.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "cli/commands/commands.h"
#include "core/ustack_frames.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "report/folded_growth.h"
#include "report/perfetto_trace.h"
#include "report/pprof_profile.h"
#include "util/errors.h"
#include "util/safe_file.h"
#include "util/text.h"
#include "util/time.h"
#include "util/unique_fd.h"

namespace vmatrace {

void write_output_file(const std::string& path, std::string_view data, bool force) {
  if (path.empty()) throw UserError("the output file name is empty");
  // The one way vmatrace creates files (util/safe_file.h): O_EXCL, never
  // through a symlink, --force replaces a regular file only.
  OutputFileOptions o;
  o.force = force;
  UniqueFd fd = create_output_file(path, o);
  write_all(fd.get(), data.data(), data.size(), path);
}

namespace {

// An "object" note: "MAJ:MIN INO BUILD-ID PATH" (BUILD-ID "-" when none).
void take_build_id(const std::string& note, PprofBuilder& out) {
  std::istringstream in(note);
  std::string devino, ino, id;
  in >> devino >> ino >> id;
  std::string path;
  std::getline(in >> std::ws, path);
  if (!path.empty() && id != "-" && !id.empty()) out.set_build_id(path, id);
}

OutputFileOptions output_options(bool force) {
  OutputFileOptions o;
  o.force = force;
  return o;
}

}  // namespace

int run_pprof_report(const ReportOptions& opts) {
  const std::string& out_path = *opts.pprof;
  if (out_path.empty()) throw UserError("--pprof needs an output file name, e.g. --pprof app.pb.gz");
  check_output_path(out_path, output_options(opts.force));  // refused before the replay, as the write would
  RecordingReader reader = open_recording(opts.path);
  PprofBuilder profile(opts.faults);
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) {
    if (opts.pid && g.pid != *opts.pid) return;
    const ProcessState* p = pipeline.processor().process(g.pid);
    profile.add_growth(g, p ? &p->layout : nullptr);
  });
  uint64_t stacks = 0, first = 0, last = 0;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (d.type == VMAT_REC_NOTE) {
      if (d.note->key == "object") take_build_id(d.note->value, profile);
      return true;
    }
    if (!first) first = d.hdr.ts;
    last = std::max<uint64_t>(last, d.hdr.ts);
    if (is_user_stack_record(d.type)) stacks++;
    if (d.type == VMAT_EV_FAULT && opts.faults && (!opts.pid || d.hdr.pid == *opts.pid)) {
      // The layout as the fault found it: the code VMA of its ip.
      const ProcessState* p = pipeline.processor().process(d.hdr.pid);
      profile.add_fault(d.fault.ip, d.fault.flags & VMAT_FAULT_MAJOR, d.fault.flags & VMAT_FAULT_MINOR,
                        p ? &p->layout : nullptr);
    }
    return true;
  });
  pipeline.finish();
  // pprof's time is wall-clock: the header's clock pair converts.
  const auto& h = reader.header();
  const uint64_t to_wall = h.clock_realtime_ns - h.clock_monotonic_ns;
  profile.set_time(first ? first + to_wall : 0, last ? last + to_wall : 0);
  const bool damaged = recording_damaged(reader);
  if (stacks == 0 && !damaged) {
    std::fprintf(stderr, "vmatrace: %s has no malloc stacks: record it with --malloc=stack (the default)%s\n",
                 opts.path.c_str(), opts.faults ? "; the profile has page faults only" : "");
    if (!opts.faults) return 1;
  }
  const std::string data = profile.gzipped();
  write_output_file(out_path, data, opts.force);
  std::fprintf(stderr, "vmatrace: wrote %s (%s): %llu malloc growth stacks, %llu fault sites, %llu records\n",
               out_path.c_str(), human_size(data.size()).c_str(),
               static_cast<unsigned long long>(profile.growth_samples()),
               static_cast<unsigned long long>(profile.fault_samples()), static_cast<unsigned long long>(records));
  return damage_status(reader, "the profile holds the " + std::to_string(records) + " records up to there");
}

int run_perfetto_report(const ReportOptions& opts) {
  const std::string& out_path = *opts.perfetto;
  if (out_path.empty()) throw UserError("--perfetto needs an output file name, e.g. --perfetto app.pftrace");
  check_output_path(out_path, output_options(opts.force));  // refused before the replay, as the write would
  RecordingReader reader = open_recording(opts.path);
  PerfettoTrace trace(parse_interval(opts.interval), opts.pid);
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  pipeline.add_sink(&trace);
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) {
    if (!opts.pid || g.pid == *opts.pid) trace.on_malloc_growth(g);
  });
  uint64_t last = reader.header().start_ts;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (d.type != VMAT_REC_NOTE) last = std::max<uint64_t>(last, d.hdr.ts);
    return true;
  });
  pipeline.finish();
  const std::string data = trace.finish(last);
  write_output_file(out_path, data, opts.force);
  const auto& st = trace.stats();
  std::fprintf(stderr,
               "vmatrace: wrote %s (%s): %llu VMA slices on %llu lanes, %llu flows, %llu tracks, %llu instant "
               "events, %llu counter values, %llu records\n",
               out_path.c_str(), human_size(data.size()).c_str(), static_cast<unsigned long long>(st.slices),
               static_cast<unsigned long long>(st.lanes), static_cast<unsigned long long>(st.flows),
               static_cast<unsigned long long>(st.tracks), static_cast<unsigned long long>(st.instants),
               static_cast<unsigned long long>(st.counters), static_cast<unsigned long long>(records));
  return damage_status(reader, "the trace holds the " + std::to_string(records) + " records up to there");
}

int run_malloc_folded_report(ReportOptions& rep, int pid) {
  if (pid) rep.pid = static_cast<uint32_t>(pid);
  RecordingReader reader = open_recording(rep.path);
  FoldedGrowth folded;
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  enable_recorded_malloc(pipeline, rep.path, rep.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) {
    if (rep.pid && g.pid != *rep.pid) return;
    const ProcessState* p = pipeline.processor().process(g.pid);
    folded.add(g, p ? std::string_view(p->comm) : std::string_view());
  });
  uint64_t stacks = 0;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (is_user_stack_record(d.type)) stacks++;
    return true;
  });
  if (stacks == 0 && !recording_damaged(reader)) {
    std::fprintf(stderr, "vmatrace: %s has no user stacks: record it with --malloc=stack (the default)\n",
                 rep.path.c_str());
    return 1;
  }
  const std::string out = folded.text();
  std::fputs(out.c_str(), stdout);
  return damage_status(reader, "reported " + std::to_string(records) + " records up to there");
}

int run_export_report(ReportOptions& rep, int pid) {
  if (pid) rep.pid = static_cast<uint32_t>(pid);
  if (rep.pprof && rep.perfetto) throw UserError("report: --pprof and --perfetto are separate outputs: give one");
  // --perfetto with --html: both files, the page linking to the trace.
  if (rep.perfetto && rep.html && !rep.json && !rep.folded && !rep.faults && !rep.malloc) {
    if (int status = run_perfetto_report(rep)) return status;
    return run_html_report(rep);
  }
  if (rep.html || rep.json || rep.folded)
    throw UserError("report: --pprof and --perfetto write a file of their own: drop --html, --json and --folded");
  // --pprof is malloc growth, and page faults too with --faults.
  if (rep.pprof) return run_pprof_report(rep);
  if (rep.faults || rep.malloc)
    throw UserError("report: --perfetto writes the whole recording: drop --faults and --malloc");
  return run_perfetto_report(rep);
}

}  // namespace vmatrace
