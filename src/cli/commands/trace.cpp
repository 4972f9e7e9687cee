// `vmatrace trace` and `vmatrace record`: one live Session each; record
// writes the recording and prints nothing but the banner and the summary.
#include <CLI/CLI.hpp>

#include <memory>

#include "cli/commands/commands.h"
#include "sym/debuginfo.h"
#include "sym/line_cache.h"
#include "trace/procfs.h"
#include "trace/session.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

struct TraceArgs {
  TraceOptions opts;
  std::string attach, faults = "stream", record_out, malloc = "stack";
  bool json = false, maps = false, no_follow = false;
  int pid = 0;
  int pidns = 0;                    // --pidns: -p is a pid in this process's PID namespace
  bool fault_summary_flag = false;  // trace --summary
  std::string interval = "100ms";   // trace --interval
  std::string rss_interval = "100ms";
};

void add_trace_options(CLI::App* sub, TraceArgs& a) {
  TraceOptions& o = a.opts;
  sub->add_option("-p,--pid", a.pid, "trace this running process (all its threads)");
  sub->add_option("--pidns", a.pidns,
                  "-p PID is the pid inside the PID namespace of this host pid (any process of the container)");
  sub->add_option("--cgroup", o.cgroup,
                  "trace every process of this cgroup v2 directory and the cgroups below it: its members now "
                  "and those forked or moved into it later (filtered in the kernel by cgroup id), until interrupted");
  sub->add_option("--comm", o.loader.comm,
                  "trace every process that execs a program of this name (as /proc/PID/comm shows it), from its "
                  "exec, until interrupted");
  sub->add_flag("--json", a.json, "one JSON object per event");
  sub->add_flag("--maps", a.maps, "print each process's rebuilt layout (as /proc/PID/maps) when it ends");
  sub->add_flag("--pmap", o.print.pmap_at_end,
                "print each process's layout pmap-style (kinds, flags, totals) when it ends");
  sub->add_flag("--no-follow", a.no_follow, "do not trace children");
  sub->add_flag("--force", o.force, "overwrite an existing recording");
  sub->add_option("--attach", a.attach, "force attach modes: MODE or FAMILY=MODE[,...] (see `vmatrace features`)");
  sub->add_option("--faults", a.faults,
                  "page faults: stream (default; one record each), summary (counted in the kernel, report at the "
                  "end), or off")
      ->check(CLI::IsMember({"stream", "summary", "off"}));
  sub->add_option("--malloc", a.malloc,
                  "attribute heap/mmap growth to the malloc call that caused it: stack (default; user stack "
                  "copied at each growth syscall, unwound from the binaries' CFI) or off")
      ->check(CLI::IsMember({"stack", "off"}));
  sub->add_option("--malloc-stack", o.malloc_stack_bytes, "bytes of user stack copied per growth (at most 16384)")
      ->check(CLI::Range(64, VMAT_USTACK_MAX));
  sub->add_flag("--keep-stack-bytes", o.keep_stack_bytes,
                "record the raw user stack memory copied at each growth (stack memory can hold secrets); by "
                "default each stack is unwound while recording and only its frames are kept");
  sub->add_flag("--debuginfod", o.debuginfod,
                "name growth frames with debug files from the DEBUGINFOD_URLS servers when not found locally (5 s "
                "wait per server unless DEBUGINFOD_TIMEOUT says; off by default: a trace never uses the network)");
  sub->add_option("--malloc-min-mmap", o.malloc_min_mmap,
                  "smallest anonymous mmap to attribute (default 131072: glibc's mmap threshold)");
  sub->add_flag("--rss", o.rss,
                "resident memory per VMA: kept from the events and corrected by PAGEMAP_SCAN of the changed "
                "ranges, recorded for replay --pmap --rss and report --rss (docs/rss.md)");
  sub->add_option("--rss-scan", o.rss_scan,
                  "with --rss: how residency is scanned: auto (default: PAGEMAP_SCAN on 6.7+, else reading "
                  "/proc/PID/pagemap), pagemap_scan, pagemap, or events (no scans)")
      ->check(CLI::IsMember({"auto", "pagemap_scan", "pagemap", "events"}));
  sub->add_option("--rss-interval", a.rss_interval,
                  "with --rss: scan each process's changed ranges at most this often (default 100ms; the whole "
                  "address space every 20 intervals)");
  sub->add_option("--ringbuf-size", o.loader.ringbuf_bytes, "ring buffer bytes (power of two; 64K, 16M accepted)")
      ->transform(CLI::AsSizeValue(false));
  sub->add_flag("--bpf-stats", o.loader.bpf_stats,
                "count each BPF program's runs and run time (BPF_ENABLE_STATS) and print them with the summary "
                "(with --json also as a final bpf_stats object)");
  sub->add_flag("-v,--verbose", o.loader.verbose,
                "show libbpf's messages, and each process not followed because it exited before its ptrace permission "
                "was checked");
  sub->add_option("-u,--user", o.user,
                  "run -- CMD as this user (default under sudo: the invoking user, from SUDO_UID/SUDO_GID)");
  sub->add_option("command", o.command, "command to run traced (after --)");
}

int run_trace(TraceArgs& a, bool record) {
  TraceOptions& o = a.opts;
  if ((a.pid != 0) + !o.command.empty() + !o.cgroup.empty() + !o.loader.comm.empty() > 1)
    throw UserError("give one of -p PID, --cgroup PATH, --comm NAME or -- CMD, not several");
  if (!a.pid && o.command.empty() && o.cgroup.empty() && o.loader.comm.empty())
    throw UserError("nothing to trace: give -p PID, --cgroup PATH, --comm NAME or -- CMD ARGS");
  if (o.loader.comm.size() >= VMAT_COMM_LEN)
    throw UserError("--comm " + o.loader.comm + ": longer than the " + std::to_string(VMAT_COMM_LEN - 1) +
                    " characters the kernel keeps of a name (give its first " + std::to_string(VMAT_COMM_LEN - 1) +
                    ")");
  if (a.pidns && !a.pid) throw UserError("--pidns HOSTPID needs -p PID (the pid inside that namespace)");
  if (a.pidns) a.pid = resolve_ns_pid(a.pidns, a.pid);
  if (a.pid) o.pid = a.pid;
  if (o.debuginfod) bound_debuginfod_wait();
  o.line_cache_dir = LineCache::default_dir();
  o.follow = !a.no_follow;
  o.print.format = a.json ? OutputFormat::kJson : OutputFormat::kText;
  o.print.maps_at_end = a.maps;
  o.record_path = a.record_out;
  if (!a.attach.empty()) o.forced = parse_attach_spec(a.attach);
  if (a.faults == "off") o.forced[Family::kFaults] = AttachMode::kNone;
  o.loader.fault_summary = a.faults == "summary";
  o.malloc = a.malloc == "off" ? MallocMode::kOff : MallocMode::kStack;
  o.fault_report = a.fault_summary_flag || a.faults == "summary";
  o.fault_report_opts.interval_ns = parse_interval(a.interval);
  o.rss_interval_ns = parse_interval(a.rss_interval);
  if (o.rss_scan != "auto" && !o.rss) throw UserError("--rss-scan goes with --rss");
  if (a.fault_summary_flag && a.faults == "off") throw UserError("--summary needs page faults: drop --faults=off");
  // Recording prints nothing but the banner and summary.
  if (record) o.print.events = false;
  Session session(std::move(o));
  return session.run();
}

}  // namespace

Command add_trace_command(CLI::App& app) {
  auto a = std::make_shared<TraceArgs>();
  auto* trace = app.add_subcommand("trace", "trace a process live: -p PID or -- CMD ARGS");
  add_trace_options(trace, *a);
  trace->add_option("-o,--output", a->record_out, "also record to this file");
  trace->add_flag("--summary", a->fault_summary_flag,
                  "print the page-fault report (as `report --faults`) on stdout after the events");
  trace->add_option("--top", a->opts.fault_report_opts.top, "rows per ranking in the fault report (0: all)");
  trace->add_option("--interval", a->interval, "fault report timeline bucket (e.g. 100ms, 1s)");
  return {trace, [a] { return run_trace(*a, /*record=*/false); }};
}

Command add_record_command(CLI::App& app) {
  auto a = std::make_shared<TraceArgs>();
  auto* record = app.add_subcommand("record", "record to a file for offline replay: -o FILE (-p PID | -- CMD)");
  add_trace_options(record, *a);
  record->add_option("-o,--output", a->record_out, "recording file")->required();
  return {record, [a] { return run_trace(*a, /*record=*/true); }};
}

}  // namespace vmatrace
