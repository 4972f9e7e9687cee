// `vmatrace report FILE --faults`: the recording through the same Pipeline
// and FaultReport that `trace --summary` feeds live; `--malloc`: its growth
// call sites; `--html` (report_html.cpp): the timeline page.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "core/ustack_frames.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "report/fault_report.h"
#include "report/loss_log.h"
#include "report/malloc_report.h"
#include "report/rss_report.h"
#include "sym/debuginfo.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

int reported_status(const RecordingReader& reader, uint64_t records) {
  return damage_status(reader, "reported " + std::to_string(records) + " records up to there");
}

// What the recording lost and where, after the report: on stdout under a
// text report, on stderr under JSON or folded output (whose consumers
// expect their format alone). Nothing when nothing was lost.
void print_losses(const LossLog& losses, const RecordingReader& reader, bool machine_output) {
  if (!losses.total()) return;
  std::string s = "vmatrace: lost " + std::to_string(losses.total()) +
                  " records (each followed by a resync of the layout from /proc); the report misses what they held:\n" +
                  losses.text(reader.header().start_ts, 20, "  ");
  std::fputs(s.c_str(), machine_output ? stderr : stdout);
}

// `report FILE --malloc`: every malloc_growth of the recording, unwound and
// attributed again from its raw stacks, ranked by call site.
int run_malloc_report(const ReportOptions& opts, RecordingReader& reader) {
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  MallocReport report;
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) {
    if (!opts.pid || g.pid == *opts.pid) report.add(g);
  });
  uint64_t stacks = 0;
  LossLog losses;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (is_user_stack_record(d.type)) stacks++;
    if (!opts.pid || d.hdr.pid == *opts.pid) losses.add(d);
    return true;
  });
  if (stacks == 0)
    std::fprintf(stderr, "vmatrace: %s has no user stacks: record it with --malloc=stack (the default)\n",
                 opts.path.c_str());
  std::string out = opts.json ? report.json(opts.top) + "\n" : report.text(opts.top);
  std::fputs(out.c_str(), stdout);
  print_losses(losses, reader, opts.json);
  if (int status = reported_status(reader, records)) return status;
  return stacks == 0 ? 1 : 0;
}

// `report FILE --rss [--since T] [--until T]`: resident growth between two
// moments (default: each process's start and end).
int run_rss_report(const ReportOptions& opts, RecordingReader& reader) {
  const uint64_t base = time_origin(opts.path);
  std::optional<uint64_t> since, until;
  if (opts.since) since = parse_moment(*opts.since, base);
  if (opts.until) until = parse_moment(*opts.until, base);
  if (since && until && *until < *since) throw UserError("report --rss: --until is before --since");
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  pipeline.enable_rss();
  RssReportOptions ro;
  ro.pid = opts.pid;
  ro.top = opts.top;
  ro.since = since.has_value();
  RssReport report(ro, *pipeline.rss());
  pipeline.add_sink(&report);
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) { report.on_growth(g); });
  bool rss_recorded = false, before_done = !since, after_done = false;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (d.type == VMAT_REC_NOTE) {
      if (d.note->key == "rss.source") rss_recorded = true;
      return true;
    }
    if (!before_done && d.hdr.ts > *since) {
      report.snapshot_before(pipeline.processor(), *since);
      before_done = true;
    }
    if (until && d.hdr.ts > *until) {
      report.snapshot_after(pipeline.processor(), *until);
      after_done = true;
      return false;
    }
    return true;
  });
  if (!rss_recorded)
    throw UserError(opts.path + " was recorded without --rss: record with `vmatrace record --rss` to see residency");
  if (!before_done) throw UserError("--since " + *opts.since + " is after the end of the recording");
  if (!after_done) pipeline.finish();
  std::string out = opts.json ? report.json() + "\n" : report.text(base);
  std::fputs(out.c_str(), stdout);
  return reported_status(reader, records);
}

struct ReportArgs {
  ReportOptions rep;
  int pid = 0;
};

}  // namespace

int run_report(const ReportOptions& opts) {
  FaultReportOptions fo;
  fo.pid = opts.pid;
  fo.top = opts.top;
  fo.interval_ns = parse_interval(opts.interval);
  RecordingReader reader = open_recording(opts.path);
  if (opts.malloc) return run_malloc_report(opts, reader);
  if (opts.rss) return run_rss_report(opts, reader);
  FaultReport report(fo);
  Pipeline pipeline;
  pipeline.processor().set_keep_ended(false);
  pipeline.add_sink(&report);
  LossLog losses;
  const uint64_t records = pipeline.run(reader, [&](const DecodedRecord& d) {
    if (!opts.pid || d.hdr.pid == *opts.pid) losses.add(d);
    return true;
  });
  pipeline.finish();
  std::string out = opts.json ? report.json() + "\n" : opts.folded ? report.folded() : report.text();
  std::fputs(out.c_str(), stdout);
  print_losses(losses, reader, opts.json || opts.folded);
  return reported_status(reader, records);
}

Command add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  ReportOptions& rep = a->rep;
  auto* report = app.add_subcommand("report",
                                    "analyses of a recording: --faults (page-fault hotspots), --malloc (growth call "
                                    "sites), --rss (resident growth), --html OUT (timeline page), --pprof OUT, "
                                    "--perfetto OUT");
  report->add_option("file", rep.path, "recording")->required();
  report->add_flag("--faults", rep.faults, "page faults: top VMAs, address ranges, code locations, timeline");
  report->add_flag("--malloc", rep.malloc, "malloc growth: call sites ranked by bytes grown (brk, mmap, mremap)");
  report->add_flag("--rss", rep.rss,
                   "resident memory growth: total by kind, VMAs and the malloc call site or syscall that created "
                   "the memory (a recording made with --rss)");
  report->add_option("--since", rep.since, "with --rss: from this moment (default: each process's start)");
  report->add_option("--until", rep.until, "with --rss: to this moment (default: each process's end)");
  report->add_flag("--json", rep.json, "as one JSON object");
  report->add_flag("--folded", rep.folded,
                   "folded stacks (flamegraph.pl, speedscope): faults comm;object;ip;VMA count, malloc growth "
                   "comm;stack;[allocator] bytes");
  report->add_option("--html", rep.html, "write the interactive address-space timeline to this HTML file");
  report->add_option("--pprof", rep.pprof,
                     "write malloc growth (and with --faults page faults) as a gzipped pprof profile to this file");
  report->add_option("--perfetto", rep.perfetto,
                     "write the recording as a Perfetto trace (VMA slices, lineage flows, counters, syscalls) to "
                     "this file");
  report->add_flag("--force", rep.force,
                   "replace an existing --html, --pprof or --perfetto file (never through a symbolic link)");
  add_symbol_options(report, rep.symbols);
  report->add_option("--pid", a->pid, "only this process");
  report->add_option("--top", rep.top, "rows per ranking (0: all)");
  report->add_option("--interval", rep.interval, "timeline bucket (e.g. 100ms, 1s)");
  return {report, [a] {
            ReportOptions& rep = a->rep;
            if (rep.symbols.debuginfod) bound_debuginfod_wait();
            if (rep.pprof || rep.perfetto) return run_export_report(rep, a->pid);  // report_export.cpp
            const int kinds = int(rep.faults) + int(rep.malloc) + int(rep.rss) + int(rep.html.has_value());
            if (kinds == 0)
              throw UserError("report: say what to report: --faults, --malloc, --rss, --html, --pprof or --perfetto");
            if (kinds > 1)
              throw UserError("report: --faults, --malloc, --rss and --html are separate reports: give one");
            if ((rep.since || rep.until) && !rep.rss) throw UserError("report: --since and --until go with --rss");
            if (rep.rss && rep.folded) throw UserError("report: --rss has no --folded form");
            if (rep.json && rep.folded) throw UserError("report: --json and --folded are exclusive");
            if (rep.malloc && rep.folded) return run_malloc_folded_report(rep, a->pid);  // report_export.cpp
            if (a->pid) rep.pid = static_cast<uint32_t>(a->pid);
            if (rep.html) return run_html_report(rep);
            return run_report(rep);
          }};
}

}  // namespace vmatrace
