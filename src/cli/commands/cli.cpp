#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>

#include "cli/commands/commands.h"
#include "record/format.h"
#include "util/errors.h"

namespace vmatrace {
namespace {

void add_trace_options(CLI::App* sub, TraceOptions& o, std::string& attach, bool& json, bool& maps,
                       std::string& faults, int& pid, bool& no_follow, std::string& malloc) {
  sub->add_option("-p,--pid", pid, "trace this running process (all its threads)");
  sub->add_flag("--json", json, "one JSON object per event");
  sub->add_flag("--maps", maps, "print each process's rebuilt layout (as /proc/PID/maps) when it ends");
  sub->add_flag("--pmap", o.print.pmap_at_end, "print each process's layout pmap-style (kinds, flags, totals) when it ends");
  sub->add_flag("--no-follow", no_follow, "do not trace children");
  sub->add_flag("--force", o.force, "overwrite an existing recording");
  sub->add_option("--attach", attach,
                  "force attach modes: MODE or FAMILY=MODE[,...] (see `vmatrace features`)");
  sub->add_option("--faults", faults,
                  "page faults: stream (default; one record each), summary (counted in the kernel, report at the "
                  "end), or off")
      ->check(CLI::IsMember({"stream", "summary", "off"}));
  sub->add_option("--malloc", malloc,
                  "attribute heap/mmap growth to the malloc call that caused it: stack (default; user stack "
                  "copied at each growth syscall, unwound from the binaries' CFI) or off")
      ->check(CLI::IsMember({"stack", "off"}));
  sub->add_option("--malloc-stack", o.malloc_stack_bytes, "bytes of user stack copied per growth (at most 16384)")
      ->check(CLI::Range(64, VMAT_USTACK_MAX));
  sub->add_option("--malloc-min-mmap", o.malloc_min_mmap,
                  "smallest anonymous mmap to attribute (default 131072: glibc's mmap threshold)");
  sub->add_option("--ringbuf-size", o.loader.ringbuf_bytes, "ring buffer bytes (power of two)");
  sub->add_flag("-v,--verbose", o.loader.verbose, "show libbpf's messages");
  sub->add_option("-u,--user", o.user,
                  "run -- CMD as this user (default under sudo: the invoking user, from SUDO_UID/SUDO_GID)");
  sub->add_option("command", o.command, "command to run traced (after --)");
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"vmatrace: watch a process's address space change, live or from a recording"};
  app.require_subcommand(1);
  app.set_version_flag("--version", VMATRACE_VERSION);

  TraceOptions trace_opts;
  std::string attach, faults = "stream", record_out, malloc = "stack";
  bool json = false, maps = false, no_follow = false;
  int pid = 0;

  auto* trace = app.add_subcommand("trace", "trace a process live: -p PID or -- CMD ARGS");
  add_trace_options(trace, trace_opts, attach, json, maps, faults, pid, no_follow, malloc);
  trace->add_option("-o,--output", record_out, "also record to this file");
  bool fault_summary_flag = false;
  std::string trace_interval = "100ms";
  trace->add_flag("--summary", fault_summary_flag,
                  "print the page-fault report (as `report --faults`) on stdout after the events");
  trace->add_option("--top", trace_opts.fault_report_opts.top, "rows per ranking in the fault report (0: all)");
  trace->add_option("--interval", trace_interval, "fault report timeline bucket (e.g. 100ms, 1s)");

  auto* record = app.add_subcommand("record", "record to a file for offline replay: -o FILE (-p PID | -- CMD)");
  add_trace_options(record, trace_opts, attach, json, maps, faults, pid, no_follow, malloc);
  record->add_option("-o,--output", record_out, "recording file")->required();

  ReplayOptions ro;
  bool rjson = false;
  int rpid = 0;
  auto* replay = app.add_subcommand("replay", "print a recording as live tracing did; layouts at any moment");
  replay->add_option("file", ro.path, "recording")->required();
  replay->add_flag("--json", rjson, "one JSON object per event");
  replay->add_option("--pid", rpid, "only this process");
  replay->add_flag("--maps", ro.maps, "print layouts (at the end, or --at T)");
  replay->add_flag("--pmap", ro.pmap, "pmap-style layouts with kinds, kernel flags and totals (at the end, or --at T)");
  replay->add_option("--lineage", ro.lineage, "history of the VMA covering ADDR (at the end, or --at T)");
  replay->add_flag("--stats", ro.stats, "apply every record to the layouts, print only counts and the rate");
  replay->add_flag("--records", ro.records,
                   "print every record as stored, one line each (the kernel's VMA stores included)");
  replay->add_option("--at", ro.at, "moment for --maps: +2.5s from the start, or CLOCK_MONOTONIC ns");
  replay->add_option("--since", ro.since, "print events from this moment");
  replay->add_option("--until", ro.until, "print events up to this moment");
  replay->add_option("--diff", ro.diff, "compare layouts at two moments")->expected(2);
  replay->add_flag("--infer-vma-changes", ro.infer_vma_changes,
                   "derive VMA changes from the syscalls alone, ignoring the kernel's recorded VMA stores");

  ReportOptions rep;
  int rep_pid = 0;
  auto* report = app.add_subcommand("report",
                                    "analyses of a recording: --faults (page-fault hotspots), --malloc (growth call sites), --html OUT (timeline page)");
  report->add_option("file", rep.path, "recording")->required();
  report->add_flag("--faults", rep.faults, "page faults: top VMAs, address ranges, code locations, timeline");
  report->add_flag("--malloc", rep.malloc, "malloc growth: call sites ranked by bytes grown (brk, mmap, mremap)");
  report->add_flag("--json", rep.json, "as one JSON object");
  report->add_flag("--folded", rep.folded, "folded stacks (flamegraph.pl, speedscope): comm;object;ip;VMA count");
  report->add_option("--html", rep.html, "write the interactive address-space timeline to this HTML file");
  report->add_option("--pid", rep_pid, "only this process");
  report->add_option("--top", rep.top, "rows per ranking (0: all)");
  report->add_option("--interval", rep.interval, "timeline bucket (e.g. 100ms, 1s)");

  std::string info_path;
  bool info_json = false;
  auto* info = app.add_subcommand("info", "describe a recording: kernel, host, command, duration, counts, losses");
  info->add_option("file", info_path, "recording")->required();
  info->add_flag("--json", info_json, "as JSON");

  bool feat_json = false;
  std::string feat_attach;
  auto* features = app.add_subcommand("features", "show how each event family attaches on this kernel");
  features->add_flag("--json", feat_json, "as JSON");
  features->add_option("--attach", feat_attach, "show the plan with these modes forced");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "vmatrace: %s (see vmatrace --help)\n", e.what());
    return 2;
  }

  try {
    if (*trace || *record) {
      if (pid && !trace_opts.command.empty()) throw UserError("give either -p PID or -- CMD, not both");
      if (!pid && trace_opts.command.empty()) throw UserError("nothing to trace: give -p PID or -- CMD ARGS");
      if (pid) trace_opts.pid = pid;
      trace_opts.follow = !no_follow;
      trace_opts.print.format = json ? OutputFormat::kJson : OutputFormat::kText;
      trace_opts.print.maps_at_end = maps;
      trace_opts.record_path = record_out;
      if (!attach.empty()) trace_opts.forced = parse_attach(attach);
      if (faults == "off") trace_opts.forced[Family::kFaults] = AttachMode::kNone;
      trace_opts.loader.fault_summary = faults == "summary";
      trace_opts.malloc = malloc == "off" ? MallocMode::kOff : MallocMode::kStack;
      trace_opts.fault_report = fault_summary_flag || faults == "summary";
      trace_opts.fault_report_opts.interval_ns = parse_interval(trace_interval);
      if (fault_summary_flag && faults == "off") throw UserError("--summary needs page faults: drop --faults=off");
      if (*record && !*trace) {
        // Recording prints nothing but the banner and summary.
        trace_opts.print.events = false;
      }
      return run_trace(std::move(trace_opts));
    }
    if (*replay) {
      ro.print.format = rjson ? OutputFormat::kJson : OutputFormat::kText;
      if (rpid) ro.print.pid = static_cast<uint32_t>(rpid);
      return run_replay(ro);
    }
    if (*report) {
      const int kinds = int(rep.faults) + int(rep.malloc) + int(rep.html.has_value());
      if (kinds == 0) throw UserError("report: say what to report: --faults, --malloc, or --html OUT.html");
      if (kinds > 1) throw UserError("report: --faults, --malloc and --html are separate reports: give one");
      if (rep.malloc && rep.folded) throw UserError("report: --folded is for --faults");
      if (rep.json && rep.folded) throw UserError("report: --json and --folded are exclusive");
      if (rep_pid) rep.pid = static_cast<uint32_t>(rep_pid);
      if (rep.html) return run_html_report(rep);
      return run_report(rep);
    }
    if (*info) return run_info(info_path, info_json);
    if (*features) return run_features(feat_json, feat_attach.empty() ? std::map<Family, AttachMode>{}
                                                                       : parse_attach(feat_attach));
  } catch (const UserError& e) {
    std::fprintf(stderr, "vmatrace: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmatrace: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace vmatrace
