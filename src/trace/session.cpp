#include "trace/session.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "core/records.h"
#include "record/writer.h"
#include "sym/jit_symbols.h"
#include "sym/stack_freezer.h"
#include "trace/banner.h"
#include "trace/fault_collector.h"
#include "trace/freeze.h"
#include "trace/procfs.h"
#include "trace/rss_scanner.h"
#include "util/errors.h"
#include "util/text.h"
#include "util/time.h"

namespace vmatrace {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_child_event{true};

void on_signal(int sig) { g_signal.store(sig); }
void on_sigchld(int) { g_child_event.store(true); }

constexpr uint64_t kPeriodicNs = 100'000'000;  // loss checks
constexpr uint64_t kFlushNs = 1'000'000'000;   // recording chunks
// A layout was read while its process ran (it could not be held still):
// value "pid P: why".
constexpr const char* kNoteSeedUnfrozen = "seed_unfrozen";
// Without CAP_SYS_PTRACE, the kernel stopped tracing a process whose
// credentials changed: value "pid P: why".
constexpr const char* kNotePtraceRefused = "ptrace_refused";

// A VMAT_CRED_SYSCALLS row's name from its x86-64 number.
std::string cred_syscall_name(uint32_t nr) {
  switch (nr) {
#define VMAT_CRED_NAME_ROW(name, x86_64_nr) \
  case x86_64_nr:                           \
    return #name;
    VMAT_CRED_SYSCALLS(VMAT_CRED_NAME_ROW)
#undef VMAT_CRED_NAME_ROW
  }
  return "syscall " + std::to_string(nr);
}

}  // namespace

Session::Session(TraceOptions opts) : opts_(std::move(opts)) {
  uint64_t t0 = monotonic_ns();
  losses_.accounted_at(t0);  // nothing is attached yet: no drop before it
  if (!opts_.cgroup.empty()) opts_.loader.cgroup_id = cgroup_v2_id(opts_.cgroup);
  features_ = probe_features();
  plan_ = plan_attach(features_, opts_.forced);
  limit_to_ptraceable_ = !have_cap_sys_ptrace();
  if (limit_to_ptraceable_) {
    // fsuid/fsgid: vmatrace never changes them, so they are its euid/egid.
    opts_.loader.ptrace_limit = true;
    opts_.loader.ptrace_uid = ::geteuid();
    opts_.loader.ptrace_gid = ::getegid();
    opts_.loader.ptrace_caps = effective_capabilities();
  }
  printer_ = std::make_unique<Printer>(opts_.out, opts_.print);
  pipeline_.add_sink(printer_.get());
  if (!opts_.record_path.empty()) {
    RecordingHeader h;
    fill_host_info(h);
    h.vmatrace_version = VMATRACE_VERSION;
    h.abi_version = VMAT_ABI_VERSION;
    h.start_ts = monotonic_ns();
    h.command = opts_.command;
    if (opts_.pid) h.pids.push_back(static_cast<uint32_t>(*opts_.pid));
    for (Family f : kAllFamilies) h.attach_modes[family_name(f)] = attach_mode_name(plan_.mode(f));
    // What the file holds of user stacks (info --privacy says so even when none came).
    h.extra["malloc_stacks"] = opts_.malloc == MallocMode::kOff ? "off" : opts_.keep_stack_bytes ? "bytes" : "frames";
    WriterOptions wo;
    wo.force = opts_.force;
    // Tests make small recordings with many checkpoints.
    if (const char* every = std::getenv("VMATRACE_CHECKPOINT_BYTES"); every && *every) {
      const std::string_view v(every);
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size())
        throw UserError("VMATRACE_CHECKPOINT_BYTES=" + escape_text(v) +
                        " is not a number of bytes: give one (0: no checkpoints) or unset it");
      wo.checkpoint_interval = n;
    }
    try {
      recorder_ = std::make_unique<RecordingWriter>(opts_.record_path, h, wo);
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
  }
  if (opts_.malloc == MallocMode::kStack) {
    opts_.loader.ustack_bytes = std::min<uint32_t>(opts_.malloc_stack_bytes, VMAT_USTACK_MAX);
    opts_.loader.ustack_min_mmap = opts_.malloc_min_mmap;
    malloc_report_ = std::make_unique<MallocReport>();
    pipeline_.on_malloc_growth(print_growth(*printer_));
    pipeline_.on_malloc_growth([this](const DecodedRecord&, const MallocGrowth& g) {
      malloc_report_->add(g);
      if (on_growth_) on_growth_(g);
    });
    // A recording keeps each stack's frames, unwound here while the
    // binaries are the ones mapped, not the stack memory (unless
    // --keep-stack-bytes). Symbolizing is for what is shown: `record`
    // leaves it to replay and report.
    SymbolSources symbols;
    symbols.debuginfod = opts_.debuginfod;
    symbols.line_cache_dir = opts_.line_cache_dir;
    unwinders_ = std::make_shared<UnwinderCache>(/*live=*/true, symbols);
    if (recorder_ && !opts_.keep_stack_bytes) stack_freezer_ = std::make_unique<StackFreezer>(unwinders_);
    if (opts_.print.events) pipeline_.enable_malloc(/*live=*/true, all_source_lines(), unwinders_);
  }
  opts_.loader.rss_stat = opts_.rss;
  tracer_ = std::make_unique<BpfTracer>(plan_, opts_.loader, [this](std::span<const std::byte> r) { handle(r); });
  attach_ns_ = monotonic_ns() - t0;
  if (opts_.fault_report || opts_.loader.fault_summary) {
    fault_report_ = std::make_unique<FaultReport>(opts_.fault_report_opts);
    fault_report_->set_mode(opts_.loader.fault_summary ? "summary" : "stream");
    fault_report_->set_majmin_known(tracer_->fault_perf());
    pipeline_.add_sink(fault_report_.get());
    if (opts_.loader.fault_summary) {
      // The kernel's counts of a process that ended are read (and deleted)
      // while its layout is still there to name their VMAs.
      fault_collector_ = std::make_unique<FaultSummaryCollector>(*tracer_, *fault_report_);
      pipeline_.add_stage(fault_collector_.get());
    }
  }
  if (!tracer_->fault_perf() && plan_.mode(Family::kFaults) != AttachMode::kNone && !opts_.quiet)
    std::fprintf(stderr, "vmatrace: major/minor faults unknown (%s)\n", tracer_->fault_perf_error().c_str());
  std::string rss_source = "events";
  if (opts_.rss) {
    pipeline_.enable_rss();
    RssScanOptions so;
    so.interval_ns = std::max<uint64_t>(opts_.rss_interval_ns, 1'000'000);
    const std::string& want = opts_.rss_scan;
    std::string why;  // why PAGEMAP_SCAN is not used
    if (want == "auto" || want == "pagemap_scan") why = RssScanner::probe();
    if (want == "pagemap_scan" && !why.empty()) throw UserError("--rss-scan pagemap_scan: " + why);
    if ((want == "auto" || want == "pagemap_scan") && why.empty()) {
      so.method = RssScanMethod::kPagemapScan;
      rss_scanner_ = std::make_unique<RssScanner>(so);
    } else if (want == "auto" || want == "pagemap") {
      const std::string why_read = RssScanner::probe_pagemap_read();
      if (want == "pagemap" && !why_read.empty()) throw UserError("--rss-scan pagemap: " + why_read);
      if (why_read.empty()) {
        so.method = RssScanMethod::kPagemapRead;
        rss_scanner_ = std::make_unique<RssScanner>(so);
        if (!opts_.quiet && want == "auto")
          std::fprintf(stderr,
                       "vmatrace: --rss: %s: reading /proc/PID/pagemap instead (one word per page of the changed "
                       "ranges, a whole address space over several scans; huge pages are not told apart)\n",
                       why.c_str());
      } else if (!opts_.quiet) {
        std::fprintf(stderr,
                     "vmatrace: --rss: %s, and %s: resident pages are estimated from faults and unmaps only "
                     "(fault-around, huge pages, reclaim and swap are not seen)\n",
                     why.c_str(), why_read.c_str());
      }
    }
    if (rss_scanner_) rss_source = std::string("events+") + rss_scan_method_name(so.method);
    if (tracer_->rss_stat())
      rss_source = "rss_stat+" + rss_source;
    else if (!opts_.quiet)
      std::fprintf(stderr,
                   "vmatrace: --rss: %s (the tracepoint needs Linux 5.5): process totals come from the VMAs' "
                   "residency and the scans' VmRSS instead\n",
                   tracer_->rss_stat_error().c_str());
  }
  inject_note(kNoteSessionStart, "");
  if (opts_.rss) inject_note("rss.source", rss_source);
  if (auto gate = read_gate_vma_line()) inject_note(kNoteGateVma, *gate);
  for (Family f : kAllFamilies) inject_note("attach." + family_name(f), attach_mode_name(plan_.mode(f)));
}

Session::~Session() = default;

void Session::on_malloc_growth(std::function<void(const MallocGrowth&)> f) {
  on_growth_ = std::move(f);
  if (malloc_report_ && on_growth_) pipeline_.enable_malloc(/*live=*/true, all_source_lines(), unwinders_);
}

std::map<std::string, uint64_t> Session::event_counts() const {
  std::map<std::string, uint64_t> out;
  for (auto [type, name] :
       {std::pair{VMAT_EV_SYSCALL, "syscall"}, std::pair{VMAT_EV_FAULT, "fault"}, std::pair{VMAT_EV_FORK, "fork"},
        std::pair{VMAT_EV_EXEC, "exec"}, std::pair{VMAT_EV_EXIT, "exit"}})
    if (type_counts_[type]) out[name] = type_counts_[type];
  return out;
}

void Session::handle(std::span<const std::byte> rec) {
  auto d = pipeline_.decode(rec);
  if (d && limit_to_ptraceable_ && refuse_if_not_ptraceable(rec, *d)) return;
  if (d && stack_freezer_ && d->type == VMAT_EV_USER_STACK) {
    // Recorded (and applied) as its frames: the raw stack goes no further.
    handle(stack_freezer_->freeze(*d, pipeline_.processor()));
    return;
  }
  if (d) report_exit_losses(*d);
  if (d) note_ns_ids(*d);
  if (d) note_host_paths(*d);
  if (d) note_jit_source(*d);
  if (d && opts_.loader.cgroup_id) adopt_cgroup_member(*d);
  if (recorder_) recorder_->append(rec);
  if (!d) return;
  // The BPF side drops an exiting process from the traced set, and adds a
  // followed child at its fork.
  if (d->type == VMAT_EV_EXIT || d->type == VMAT_EV_FORK) recount_ = true;
  const uint64_t rejected = pipeline_.processor().stats().rejected;
  if (stack_freezer_) stack_freezer_->observe(*d);
  pipeline_.apply(*d);
  if (recorder_) {
    // Every record appended so far is applied: the Processor's state now is
    // what a reader needs to start after them.
    checkpoint_.observe(*d);
    if (recorder_->checkpoint_due() && Checkpoint::can_save(pipeline_.processor()))
      recorder_->append_checkpoint(checkpoint_.save(pipeline_.processor()));
  }
  // An impossible change, or an exec walk that did not run or came in part.
  if (pipeline_.processor().stats().rejected != rejected ||
      (d->type == VMAT_EV_VMA_SNAPSHOT && (d->snap.flags & VMAT_SNAP_LAST)))
    check_unknown(d->hdr.pid);
  if (d->type == VMAT_EV_FORK && (d->fork.flags & VMAT_FORK_TRACED) && !(d->fork.flags & VMAT_FORK_THREAD))
    seed_unknown_child(d->fork.child_pid);
  if (recorder_)
    for (const auto& note : objects_.notes_for(*d)) inject_note("object", note);
  if (d->type == VMAT_EV_EXIT && (d->exit.flags & VMAT_EXIT_GROUP)) store_jit_map(d->hdr.pid, d->hdr.ts, d->comm);
  // The unlink happened at this record's time: the "(deleted)" it causes
  // belongs there, not at the next poll.
  if (d->type == VMAT_EV_FS) check_deleted(d->hdr.ts);
  losses_.forget_ended(*d);
  if (d->type < type_counts_.size()) type_counts_[d->type]++;  // no string, no map per event
  if (rss_scanner_) rss_scanner_->note(*d);
  // Without the kernel's exec walk, a followed child was stopped at its exec
  // by the BPF side (vmat_stop_on_exec): read /proc, then let it go.
  // (The spawned command's first exec is the one ptrace stopped: spawn()
  // seeds that one.)
  if (d->type == VMAT_EV_EXEC && plan_.mode(Family::kExecLayout) == AttachMode::kProcfs) {
    if (static_cast<pid_t>(d->hdr.pid) == child_ && !child_exec_seen_)
      child_exec_seen_ = true;
    else
      seed_after_exec(d->hdr.pid);
  }
}

void Session::note_ns_ids(const DecodedRecord& d) {
  if (d.type == VMAT_EV_NS_IDS) {  // the kernel's, at its fork: no /proc look-up for it
    ns_seen_tids_.insert(d.hdr.tid);
    ns_other_pid_[d.hdr.pid] = true;
    return;
  }
  if (d.hdr.pid == 0 || d.type == VMAT_REC_NOTE || d.type == VMAT_REC_NS_IDS || d.type == VMAT_REC_FILE_DELETED ||
      d.type == VMAT_REC_LOSS || d.type == VMAT_REC_JIT_MAP || d.type == VMAT_REC_HOST_PATH)
    return;
  // A child the kernel did not name (VMAT_EV_NS_IDS comes before its fork
  // record) is in the initial namespace: no /proc look-up for it.
  if (d.type == VMAT_EV_FORK && (d.fork.flags & (VMAT_FORK_TRACED | VMAT_FORK_THREAD)) &&
      ns_seen_tids_.insert(d.fork.child_tid).second)
    ns_other_pid_.try_emplace(d.fork.child_pid, false);
  note_ns_ids_of(d.hdr.pid, d.hdr.tid, d.hdr.ts);
  if (d.type == VMAT_EV_EXIT) {
    ns_seen_tids_.erase(d.hdr.tid);
    if (d.exit.flags & VMAT_EXIT_GROUP) ns_other_pid_.erase(d.hdr.pid);
  } else if (d.type == VMAT_EV_EXEC && d.exec.old_tid != d.hdr.tid) {
    ns_seen_tids_.erase(d.exec.old_tid);  // de_thread(): that tid is gone
  }
}

void Session::note_host_paths(const DecodedRecord& d) {
  // An exec may follow an unshare(CLONE_NEWNS), setns() or chroot() (what
  // a container runtime does before it starts the container's program):
  // the process's tree is judged again from there.
  if (d.type == VMAT_EV_EXEC) mount_paths_.forget(static_cast<pid_t>(d.hdr.pid));
  // Only records that name a mapped file, and only processes that see
  // another file tree than ours (their own mount namespace or root).
  const auto one = [&](std::string_view path, uint32_t dev, uint64_t ino) {
    if (path.empty() || path.front() != '/') return;
    const auto pid = static_cast<pid_t>(d.hdr.pid);
    if (auto host = mount_paths_.first_host_path(pid, path, dev, ino))
      handle(encode_host_path(make_header(VMAT_REC_HOST_PATH, d.hdr.ts, d.hdr.pid, d.hdr.tid, d.comm),
                              HostPathRecord{dev, ino, std::string(path), std::move(*host)}));
  };
  if (d.type == VMAT_EV_SYSCALL && !d.path.empty() && (d.sys.vma[0].state & VMAT_VMA_FILE))
    one(d.path, d.sys.vma[0].dev, d.sys.vma[0].ino);
  else if (d.type == VMAT_EV_VMA_SNAPSHOT && !d.path.empty() && (d.snap.vma.state & VMAT_VMA_FILE))
    one(d.path, d.snap.vma.dev, d.snap.vma.ino);
  else if (d.type == VMAT_REC_LAYOUT && d.layout)
    for (const auto& v : d.layout->vmas)
      if (v.is_file() && v.special.empty()) one(v.path, v.dev, v.ino);
  if (d.type == VMAT_EV_EXIT && (d.exit.flags & VMAT_EXIT_GROUP)) mount_paths_.forget(static_cast<pid_t>(d.hdr.pid));
}

void Session::note_ns_ids_of(uint32_t pid, uint32_t tid, uint64_t ts) {
  if (!ns_seen_tids_.insert(tid).second) return;
  auto other = ns_other_pid_.find(pid);
  if (other != ns_other_pid_.end() && !other->second) return;  // a process in our namespace
  const auto ids = read_ns_ids(static_cast<pid_t>(pid), static_cast<pid_t>(tid));
  if (!ids) return;  // gone already: its records show host ids only
  ns_other_pid_[pid] = ids->nspid != 0;
  if (!ids->nspid) return;
  handle(encode_ns_ids(make_header(VMAT_REC_NS_IDS, ts, pid, tid, read_comm(static_cast<pid_t>(pid))), *ids));
}

void Session::adopt_cgroup_member(const DecodedRecord& d) {
  if (d.type >= VMAT_REC_USER_BASE || d.type == VMAT_EV_EXIT || d.hdr.pid == 0) return;
  if (pipeline_.processor().process(d.hdr.pid)) return;
  // Read after the record was made: what it did is in the layout (its
  // ts is older than the seed's), and it applies to nothing twice.
  if (auto snap = snapshot_layout(static_cast<pid_t>(d.hdr.pid), LayoutReason::kAttach); snap.bytes)
    handle(*snap.bytes);
}

size_t Session::attach_cgroup() {
  size_t n = 0;
  for (pid_t p : cgroup_members(opts_.cgroup)) {
    if (tracer_->is_traced(static_cast<uint32_t>(p)) || !may_trace(p)) continue;
    attach_one(p, /*required=*/false);
    n++;
  }
  return n;
}

void Session::seed_after_exec(pid_t pid) {
  // The SIGSTOP sent at exec takes effect on the way back to user space:
  // wait for it (briefly: a process that died or was continued by someone
  // else is read as it is).
  for (int i = 0; i < 200; i++) {
    char st = proc_state(pid);
    if (st == 0) return;  // gone
    if (st == 'T' || st == 't') break;
    ::usleep(500);
  }
  inject_layout(pid, LayoutReason::kExec, monotonic_ns());
  ::kill(pid, SIGCONT);
}

void Session::inject_note(const std::string& key, const std::string& value) {
  auto bytes = encode_note(make_header(VMAT_REC_NOTE, monotonic_ns(), 0, 0, "vmatrace"), NoteRecord{key, value});
  handle(bytes);
}

bool Session::jit_names_kept() const {
  // Only for naming stack frames: not kept without malloc attribution.
  return opts_.malloc == MallocMode::kStack && (recorder_ || pipeline_.malloc_enabled());
}

void Session::note_jit_source(const DecodedRecord& d) {
  if (d.hdr.pid == 0 || d.type >= VMAT_REC_USER_BASE || !jit_names_kept()) return;
  auto it = jit_sources_.find(d.hdr.pid);
  if (it == jit_sources_.end()) it = jit_sources_.emplace(d.hdr.pid, LiveJitSource{JitSource(d.hdr.pid), 0}).first;
  // Its files are opened as soon as they exist (looked for at most once a
  // second, by the records' clock): held, they outlive the process and its
  // container's /tmp.
  LiveJitSource& live = it->second;
  if (live.source.has_perf_map() && live.source.has_jitdump()) return;
  if (d.hdr.ts < live.next_look_ts) return;
  live.next_look_ts = d.hdr.ts + 1'000'000'000;
  if (!live.source.has_perf_map()) live.source.open_perf_map();
  open_jitdump_of(d.hdr.pid, live.source);
}

void Session::open_jitdump_of(uint32_t pid, JitSource& source) const {
  // The runtime maps its jitdump so that perf finds it among its mappings:
  // so does the model's layout.
  if (source.has_jitdump()) return;
  if (const ProcessState* p = pipeline_.processor().process(pid))
    p->layout.for_each_vma([&](const Vma& v) {
      if (!source.has_jitdump() && (v.flags & VM_EXEC) && !v.path.empty()) source.open_jitdump(v.path.view());
    });
}

void Session::store_jit_map(uint32_t pid, uint64_t ts, std::string_view comm) {
  if (!jit_names_kept()) return;
  auto it = jit_sources_.find(pid);
  if (it == jit_sources_.end()) it = jit_sources_.emplace(pid, LiveJitSource{JitSource(pid), 0}).first;
  JitSource& source = it->second.source;
  open_jitdump_of(pid, source);
  JitTable table;
  const bool found = source.refresh(table);
  jit_sources_.erase(it);
  if (!found || table.size() == 0) return;
  const auto code = table.entries();
  // Records of ~256 KiB: well inside a recording chunk however long the names.
  constexpr size_t kRecordBytes = 256 << 10;
  size_t from = 0, bytes = 0;
  for (size_t i = 0; i <= code.size(); i++) {
    if (i == code.size() || bytes >= kRecordBytes) {
      if (i > from)
        handle(encode_jit_map(make_header(VMAT_REC_JIT_MAP, ts, pid, pid, comm),
                              std::span<const JitCode>(code.data() + from, i - from)));
      from = i;
      bytes = 0;
    }
    if (i < code.size()) bytes += 20 + code[i].name.size();
  }
}

std::optional<std::vector<std::byte>> Session::layout_record(pid_t pid, LayoutReason reason, uint64_t ts) {
  LayoutRecord l;
  try {
    l = read_proc_layout_record(pid);
  } catch (const std::exception&) {
    return std::nullopt;  // gone: its exit record ends it
  }
  l.reason = reason;
  return encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, read_comm(pid)), l);
}

void Session::inject_layout(pid_t pid, LayoutReason reason, uint64_t ts) {
  if (auto bytes = layout_record(pid, reason, ts)) handle(*bytes);
}

pid_t Session::spawn(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UserError("no command given after --");
  // Resolved here, not in the child: getpwnam() is not safe after fork().
  const std::optional<RunAs> run_as = resolve_run_as(opts_.user);
  if (resolve_command(argv[0]).empty()) throw UserError("command not found: " + argv[0], 127);
  // Without the kernel's exec walk, stop the child at exec with ptrace so
  // /proc is read before its first instruction (the dynamic loader maps
  // libraries at once), then let it go.
  bool stop_at_exec = plan_.mode(Family::kExecLayout) == AttachMode::kProcfs;
  HeldChild child(argv, run_as, stop_at_exec);
  const pid_t pid = child.pid();
  child_ = pid;
  tracer_->trace_pid(pid, opts_.follow, /*wait_exec=*/true);
  if (int e = child.release()) {
    child_status_ = 127;
    throw UserError("cannot run " + argv[0] + ": " + std::strerror(e), e == ENOENT ? 127 : 126);
  }
  if (stop_at_exec && child.wait_exec_stop()) {
    // The exec record must come first in the stream: it resets the layout
    // that this seed then fills.
    drain();
    inject_layout(pid, LayoutReason::kSpawn, monotonic_ns());
    child.detach();
  }
  return pid;
}

void Session::attach(pid_t pid) {
  check_attachable(pid);
  attach_one(pid, /*required=*/true);
  // -p PARENT follows children: those that already exist too (their
  // threads come with them: the BPF side filters by process). A child
  // forked while we walk is followed by the kernel once its parent is.
  if (opts_.follow)
    for (pid_t d : proc_descendants(pid))
      if (!tracer_->is_traced(static_cast<uint32_t>(d)) && may_trace(d)) attach_one(d, /*required=*/false);
}

void Session::attach_one(pid_t pid, bool required) {
  // Held still first (ProcessFreeze: every thread in a ptrace stop, no
  // memory syscall of it in flight), then traced, then read, and the layout
  // handled before it runs again: what it did before is in the layout, what
  // it does after is in the stream after it, and nothing it does while we
  // read can overflow the ring buffer or land in neither.
  ProcessFreeze freeze(pid, reaped_by_freeze());
  note_unfrozen(pid, freeze);
  tracer_->trace_pid(static_cast<uint32_t>(pid), opts_.follow);
  // Records already queued (other processes') come first in the stream.
  drain();
  // Not held (ptrace refused): records older than ts are already in what
  // /proc shows; those that came while it was read are applied after it
  // (the model's rules are idempotent, and a change that cannot happen
  // twice is recognised as already in the seed: Processor, "in_seed").
  auto bytes = layout_record(pid, LayoutReason::kAttach, monotonic_ns());
  if (!bytes) {
    tracer_->untrace_pid(static_cast<uint32_t>(pid));
    recount_ = true;
    if (required) throw UserError("process " + std::to_string(pid) + " exited during attach");
    return;
  }
  // Handled before anything else is drained: a record made after its time
  // must find the layout there, or it is dropped.
  handle(*bytes);
}

Session::LayoutSnapshot Session::snapshot_layout(pid_t pid, LayoutReason reason) {
  // The layout of one moment, taken while every thread is held still, when
  // no memory syscall of the process is in flight: a record older than it
  // is in the layout (the Processor skips it), a newer one is not. The
  // caller handles it before the freeze ends (LayoutSnapshot holds it).
  LayoutSnapshot snap;
  snap.freeze = std::make_unique<ProcessFreeze>(pid, reaped_by_freeze());
  note_unfrozen(pid, *snap.freeze);
  snap.bytes = layout_record(pid, reason, monotonic_ns());
  return snap;
}

// The spawned command's leader, ending while held: the freeze's wait took
// its exit status, which reap() would otherwise wait for forever.
ProcessFreeze::OnReaped Session::reaped_by_freeze() {
  return [this](pid_t tid, int st) {
    if (tid != child_ || child_status_) return;
    if (WIFEXITED(st))
      child_status_ = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
      child_status_ = 128 + WTERMSIG(st);
  };
}

void Session::note_unfrozen(pid_t pid, const ProcessFreeze& freeze) {
  if (freeze.frozen()) return;
  unfrozen_seeds_++;
  if (freeze.why_not().empty() || last_unfrozen_why_ == freeze.why_not()) return;
  last_unfrozen_why_ = freeze.why_not();
  inject_note(kNoteSeedUnfrozen, "pid " + std::to_string(pid) + ": " + freeze.why_not());
}

// A followed child of a parent whose layout is not known (forked while
// the parent was being attached to, or while its model was unknown) has
// nothing to copy: its own layout is read.
void Session::seed_unknown_child(uint32_t child) {
  const ProcessState* c = pipeline_.processor().process(child);
  if (c && !c->seeded && !c->awaiting_exec_walk)
    if (auto snap = snapshot_layout(static_cast<pid_t>(child), LayoutReason::kAttach); snap.bytes) handle(*snap.bytes);
}

// A process whose model stopped being known (a change that could not
// apply) says so, on stderr and in the stream, and is read again from
// /proc: the model is never silently unknown.
void Session::check_unknown(uint32_t pid) {
  const ProcessState* p = pipeline_.processor().process(pid);
  if (!p || p->seeded || p->awaiting_exec_walk || p->unknown_reason.empty() || p->exited) return;
  std::string why = "pid " + std::to_string(pid) + ": layout unknown after " + p->unknown_reason;
  if (!opts_.quiet) std::fprintf(stderr, "vmatrace: %s; reading it again from /proc\n", escape_text(why).c_str());
  inject_note(kNoteModelUnknown, why);
  if (auto snap = snapshot_layout(static_cast<pid_t>(pid), LayoutReason::kResync); snap.bytes) handle(*snap.bytes);
}

// Written into the stream as records, so replay shows the same.
void Session::check_deleted(uint64_t ts) {
  for (const auto& f : deleted_files_.find(pipeline_.processor())) {
    auto bytes =
        encode_file_deleted(make_header(VMAT_REC_FILE_DELETED, ts ? ts : monotonic_ns(), f.pid, f.pid, "vmatrace"),
                            FileDeletedRecord{f.dev, f.ino, f.path});
    handle(bytes);
  }
}

void Session::collect_fault_summary(std::optional<uint32_t> pid) {
  if (fault_collector_) fault_collector_->collect(pipeline_.processor(), pid);
}

bool Session::refuse_if_not_ptraceable(std::span<const std::byte> rec, const DecodedRecord& d) {
  if (refused_.count(d.hdr.pid)) return true;
  uint32_t pid = 0;
  if (d.type == VMAT_EV_EXEC_REFUSED) {
    // The kernel judged the exec (bpf/ptrace.bpf.h) and stopped tracing
    // it there: this replaces its exec record, and nothing of it follows.
    pid = d.hdr.pid;
    recount_ = true;
    refused_.insert(pid);
    if (ptrace_access(static_cast<pid_t>(pid)).gone())
      note_not_followed(static_cast<pid_t>(pid));
    else
      say_stopped_following(pid, read_comm(pid),
                            refusal_reason("its exec", d.exec_refused.why, d.exec_refused.uid, d.exec_refused.euid));
    return true;
  }
  if (d.type == VMAT_EV_CRED_REFUSED) {
    // The kernel judged a set*id, setgroups, capset or prctl at its exit
    // (bpf/ptrace.bpf.h) and stopped tracing the process there: nothing of
    // it follows. Said even when it is gone by now: the kernel's judgement
    // is the answer, the process ran on past it.
    pid = d.hdr.pid;
    recount_ = true;
    refused_.insert(pid);
    tracer_->untrace_pid(pid);  // its loss count too
    std::string who = "its " + cred_syscall_name(d.cred_refused.nr);
    if (d.hdr.tid != d.hdr.pid) who += " in thread " + std::to_string(d.hdr.tid);
    const auto& r = d.cred_refused;
    std::string reason = (r.why & VMAT_REFUSED_GIDS) ? who + " gave it gid " + std::to_string(r.gid) + " (effective " +
                                                           std::to_string(r.egid) + ")"
                                                     : refusal_reason(who, r.why, r.uid, r.euid);
    say_stopped_following(pid, std::string(d.comm), reason);
    return true;
  }
  if (d.type == VMAT_EV_FORK && (d.fork.flags & VMAT_FORK_TRACED) && !(d.fork.flags & VMAT_FORK_THREAD)) {
    pid = d.fork.child_pid;
    refused_.erase(pid);  // a reused pid: the new process is judged afresh
  } else if (d.type == VMAT_EV_EXEC) {
    pid = d.hdr.pid;
  } else if (opts_.loader.cgroup_id && d.type < VMAT_REC_USER_BASE && d.type != VMAT_EV_EXIT && d.hdr.pid &&
             !pipeline_.processor().process(d.hdr.pid)) {
    // A process that joined the traced cgroup, seen for the first time
    // (adopt_cgroup_member() reads its layout next).
    if (may_trace(static_cast<pid_t>(d.hdr.pid))) return false;
    tracer_->untrace_pid(d.hdr.pid);
    return true;
  } else {
    return false;
  }
  const PtraceAccess access = ptrace_access(static_cast<pid_t>(pid));
  if (access.allowed()) return false;
  // Reaped before it could be asked. A child is born with its parent's
  // credentials and dumpability (copied at the fork), and its parent is
  // followed: that permission holds until an exec could change it. An exec
  // keeps it unless the file could change the credentials (set-ID, file
  // capabilities, unreadable); else, fail-closed, it is not followed.
  if (access.gone() && (d.type == VMAT_EV_FORK || !exec_may_change_credentials(std::string(d.path)))) return false;
  tracer_->untrace_pid(pid);
  recount_ = true;
  refused_.insert(pid);
  if (access.gone())
    note_not_followed(static_cast<pid_t>(pid));
  else
    std::fprintf(stderr, "vmatrace: stopped following pid %u (%s): %s\n", pid, escape_text(read_comm(pid)).c_str(),
                 access.why.c_str());
  if (d.type == VMAT_EV_EXEC) return true;  // already the refused process's own
  // The fork itself is the parent's and stays, as the fork of a child not
  // followed: the model starts no process of it (nor reads its layout).
  std::vector<std::byte> parents(rec.begin(), rec.end());
  const uint32_t flags = d.fork.flags & ~VMAT_FORK_TRACED;
  std::memcpy(parents.data() + offsetof(vmat_fork_event, flags), &flags, sizeof(flags));
  handle(parents);
  return true;
}

// Why the kernel's judgement (VMAT_REFUSED_* bits) refused what `what`
// ("its exec", "its setresuid") left the process with.
std::string Session::refusal_reason(const std::string& what, uint32_t why, uint32_t uid, uint32_t euid) {
  if (why & VMAT_REFUSED_IDS)
    return what + " gave it uid " + std::to_string(uid) + " (effective " + std::to_string(euid) + ")";
  if (why & VMAT_REFUSED_GIDS) return what + " gave it group ids other than yours";
  if (why & VMAT_REFUSED_CAPS) return what + " gave it capabilities you lack";
  return what + " made it undumpable";
}

// One line on stderr, and a note in the stream (a recording keeps why a
// process's records end there).
void Session::say_stopped_following(uint32_t pid, const std::string& comm, const std::string& reason) {
  std::fprintf(stderr, "vmatrace: stopped following pid %u (%s): %s; CAP_SYS_PTRACE would allow it\n", pid,
               escape_text(comm).c_str(), reason.c_str());
  inject_note(kNotePtraceRefused, "pid " + std::to_string(pid) + ": " + reason);
}

// Without CAP_SYS_PTRACE, a process found at attach is traced only if the
// user may ptrace it; a refusal is said once per process.
bool Session::may_trace(pid_t pid) {
  if (!limit_to_ptraceable_) return true;
  if (refused_.count(static_cast<uint32_t>(pid))) return false;
  const PtraceAccess access = ptrace_access(pid);
  if (access.allowed()) return true;
  refused_.insert(static_cast<uint32_t>(pid));
  if (access.gone())
    note_not_followed(pid);
  else
    std::fprintf(stderr, "vmatrace: not tracing pid %d (%s): %s\n", pid, escape_text(read_comm(pid)).c_str(),
                 access.why.c_str());
  return false;
}

// A process that exited before its permission was established is not
// followed (fail-closed): counted for the summary, named with -v.
void Session::note_not_followed(pid_t pid) {
  not_followed_++;
  if (opts_.loader.verbose)
    std::fprintf(stderr,
                 "vmatrace: not following pid %d: it exited before vmatrace could check that you may ptrace it\n", pid);
}

void Session::report_exit_losses(const DecodedRecord& d) {
  if (d.type != VMAT_EV_EXIT || !(d.exit.flags & VMAT_EXIT_GROUP)) return;
  auto fresh = losses_.take_new(d.hdr.pid, d.exit.lost);
  if (!fresh) return;
  // No resync follows: the process is gone, its layout ends with this exit.
  LossRecord loss{*fresh, d.exit.lost};
  loss.resync = false;
  loss.since_ts = losses_.accounted_until();
  handle(encode_loss(make_header(VMAT_REC_LOSS, d.hdr.ts, d.hdr.pid, d.hdr.pid, d.comm), loss));
}

void Session::write_loss(uint32_t pid, uint64_t ts, const LossRecord& loss) {
  std::string comm = read_comm(static_cast<pid_t>(pid));
  if (const ProcessState* p = pipeline_.processor().process(pid); comm.empty() && p) comm = p->comm;  // gone
  handle(encode_loss(make_header(VMAT_REC_LOSS, ts, pid, pid, comm), loss));
}

void Session::report_unread(uint64_t ts) {
  // Past the stop: what the untraced processes still wrote (their syscalls
  // in flight then) is read; the rest (processes that joined since) is not.
  std::map<uint32_t, uint64_t> unread;
  tracer_->drain_untraced(unread);
  for (const auto& [pid, n] : tracer_->unread()) unread[pid] += n;
  uint64_t total = 0;
  for (const auto& [pid, n] : unread) {
    LossRecord loss{n, losses_.add_unread(pid, n)};
    loss.resync = false;
    loss.unread = true;
    loss.since_ts = ts;  // written after tracing stopped
    write_loss(pid, ts, loss);
    total += n;
  }
  if (total && !opts_.quiet)
    std::fprintf(
        stderr, "vmatrace: %" PRIu64 " records written after tracing stopped were not read (counted as lost)\n", total);
}

void Session::check_losses() {
  // Stopping: the drains now end early (run() stops on the signal), so a
  // process's records may still be in the ring; finish() checks once it
  // has read them.
  if (g_signal.load() && !final_drain_) return;
  if (losses_.any_new(tracer_->lost())) report_losses();
  forget_orphan_losses();
}

void Session::report_losses() {
  const uint64_t ts = monotonic_ns();
  // Each process with new losses is held still and read first, then the
  // records queued before that are handled (the stream keeps them before
  // its loss record), then its loss and its layout, and only then does it
  // run again. Read after the drain, the resync would wait for a ring's
  // worth of records while the process went on changing (a slow consumer
  // took longer than the process's next moment: a layout shown wrong at
  // it); nothing of a held process is queued meanwhile, so the records the
  // drain hands over are all older than its layout (the Processor skips
  // them once it is seeded).
  std::vector<std::pair<uint32_t, LayoutSnapshot>> snaps;
  for (const auto& [pid, n] : tracer_->lost())
    if (losses_.any_new({{pid, n}}))
      snaps.emplace_back(pid, snapshot_layout(static_cast<pid_t>(pid), LayoutReason::kResync));
  drain();
  // Read again: a process whose exit was among the records just drained is
  // gone from the kernel's map, and its losses were counted at its exit.
  const std::map<uint32_t, uint64_t> lost = tracer_->lost();
  for (auto& [pid, snap] : snaps) {
    const auto counted = lost.find(pid);
    if (counted == lost.end()) continue;
    const uint64_t n = counted->second;
    if (!losses_.any_new({{pid, n}})) continue;
    auto& layout = snap.bytes;
    // Unreadable: exiting or gone, with its last records (and its exit
    // record, which carries the count: the loss is then reported just
    // before it) maybe still in the ring. Wait one check (a drain) for them.
    if (!layout && !final_drain_ && deferred_losses_.insert(pid).second) continue;
    deferred_losses_.erase(pid);
    auto fresh = losses_.take_new(pid, n);
    if (!fresh) continue;
    LossRecord loss{*fresh, n};
    // Says whether a resync follows (a process that is gone has none: its
    // exit record ends it).
    loss.resync = layout.has_value();
    loss.since_ts = losses_.accounted_until();
    write_loss(pid, ts, loss);
    if (layout) handle(*layout);
    snap.freeze.reset();  // runs again
    // A lost exec record leaves a process stopped at its exec (procfs exec
    // layout) with nobody to continue it: the resync above read its layout.
    if (plan_.mode(Family::kExecLayout) == AttachMode::kProcfs && proc_state(static_cast<pid_t>(pid)) == 'T')
      ::kill(static_cast<pid_t>(pid), SIGCONT);
  }
}

// A count left in the kernel's map by a process that is no longer traced:
// its exit record was lost (bpf/process.bpf.c keeps the count then). Seen
// untraced at two checks with a drain between, so an exit record that was
// merely still in the ring has been handled (and the count with it) first.
void Session::forget_orphan_losses() {
  std::set<uint32_t> still;
  for (const auto& [pid, n] : tracer_->lost()) {
    if (tracer_->is_traced(pid)) continue;
    if (!orphans_.count(pid)) {
      still.insert(pid);
      continue;
    }
    if (losses_.any_new({{pid, n}})) continue;  // grew since: reported at the next check first
    tracer_->forget_lost(pid);
    losses_.forget(pid);
  }
  orphans_ = std::move(still);
}

void Session::reap() {
  if (child_ <= 0 || child_status_) return;
  // waitpid(WNOHANG) on a child busy in mm syscalls was measured at ~1.6 ms
  // of system time per call here: only look after SIGCHLD (or on the
  // periodic tick, in case the handler is not ours).
  if (!g_child_event.exchange(false) && !periodic_due_) return;
  int st = 0;
  pid_t r = ::waitpid(child_, &st, WNOHANG);
  if (r == child_) {
    if (WIFEXITED(st))
      child_status_ = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
      child_status_ = 128 + WTERMSIG(st);
  }
}

int Session::idle_wait_ms() const {
  // A poll on a ring with records returns at once; one on an empty ring
  // sleeps until the BPF side forces a wake-up (wakeup_bytes queued) or the
  // timeout, and every wake-up costs a context switch: at 1 ms they were
  // ~20% of the tracer's CPU on the storm (perf: poll -> schedule). A ring
  // with room for twice the wake-up level is never near full before the
  // forced wake-up, so 10 ms; a smaller one has no forced wake-up at all.
  return opts_.loader.ringbuf_bytes >= 2 * opts_.loader.wakeup_bytes ? 10 : 1;
}

void Session::step(int timeout_ms) {
  tracer_->poll(timeout_ms);
  uint64_t now = monotonic_ns();
  periodic_due_ = now - last_periodic_ns_ >= kPeriodicNs;
  // A loss is reported (and the layout resynchronised) at the first step
  // after the kernel counted it: the one counter is a single lookup, the
  // per-pid map is walked only when it moved. A short burst that ends
  // before the periodic check (a storm under ASan) still gets its resync
  // while the process lives.
  const uint64_t lost_now = tracer_->lost_in_kernel();
  const bool lost_moved = lost_now != last_lost_in_kernel_;
  last_lost_in_kernel_ = lost_now;
  // With nothing ever lost there is nothing to look for: the per-pid map
  // (64k buckets, walked whole) is read only once the counter is not 0.
  if (lost_moved || (periodic_due_ && lost_now != 0)) check_losses();
  // Every drop the counter held when read (after now) is in a loss record:
  // a later loss started after now (its since_ts; replay --at flags the
  // moments from there to the resync as not exact).
  if (lost_now <= losses_.dropped()) losses_.accounted_at(now);
  if (periodic_due_) {
    last_periodic_ns_ = now;
    check_deleted(0);
  }
  if (rss_scanner_ && rss_scanner_->due(now)) scan_rss(now);
  if (recorder_ && now - last_flush_ns_ >= kFlushNs) {
    last_flush_ns_ = now;
    recorder_->flush();
  }
  reap();
}

bool Session::rss_pending(uint32_t pid) const { return rss_scanner_ && rss_scanner_->pending(pid); }

void Session::scan_rss(uint64_t now) {
  // What happened before the scan goes into the stream before it.
  drain();
  std::vector<std::pair<uint32_t, std::string>> pids;
  for (const auto* p : pipeline_.processor().processes())
    if (!p->exited && p->seeded) pids.emplace_back(p->pid, p->comm);
  for (const auto& rec : rss_scanner_->scan(now, pids)) handle(rec);
}

void Session::drain() {
  // While producers outrun us (a sanitizer build, a loaded machine) the ring
  // never empties, and a drain to the end would hold back what follows it
  // (a loss check's resync, the attach of the next process) for as long as
  // they run: read what was queued when this drain began (when tracing
  // stopped, for the drains of finish()), no more. A pending signal (run()
  // stops on it) ends it earlier, except in finish().
  const uint64_t until = final_drain_ ? stop_pos_ : tracer_->queued_until();
  while (tracer_->drain(until) > 0) {
    if (g_signal.load() && !final_drain_) break;
  }
  // A read stops at a record reserved and not yet committed (its program
  // still running, or its CPU taken away mid-program on a loaded machine).
  // Before the stop position that record and those after it are the trace's
  // own: the final drain waits for them (a bounded while), or they would be
  // counted as unread after the stop and then read after that loss record
  // (a loss with no resync after it: seen once under ASan beside the VM).
  for (int waited_ms = 0; final_drain_ && tracer_->read_until() < until && waited_ms < 1000; waited_ms++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    while (tracer_->drain(until) > 0) {
    }
  }
  check_deleted(0);
  // Right after the drain: few records of the ring are newer than what the
  // map says (a fault record still in flight, counted again after it).
  sync_rss_counters();
}

namespace {

// /proc/PID/status's RssFile, RssAnon, VmSwap and RssShmem in pages, as
// the kernel's counters (mm 0: read from /proc); nullopt when unreadable.
std::optional<vmat_rss_state> status_counters(uint32_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%u/status", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f) return std::nullopt;
  vmat_rss_state st{};
  const std::pair<const char*, int> keys[] = {
      {"RssFile:", VMAT_MM_FILE}, {"RssAnon:", VMAT_MM_ANON}, {"VmSwap:", VMAT_MM_SWAP}, {"RssShmem:", VMAT_MM_SHMEM}};
  char line[256];
  int found = 0;
  while (std::fgets(line, sizeof(line), f))
    for (const auto& [key, member] : keys)
      if (std::strncmp(line, key, std::strlen(key)) == 0) {
        st.pages[member] = static_cast<int64_t>(std::strtoull(line + std::strlen(key), nullptr, 10) * 1024 / kPageSize);
        found++;
      }
  std::fclose(f);
  if (found != 4) return std::nullopt;
  return st;
}

}  // namespace

void Session::sync_rss_counters() {
  const RssModel* model = pipeline_.rss();
  if (!model || !tracer_->rss_stat()) return;
  std::vector<vmat_rss_stat_event> out;
  for (const auto* p : pipeline_.processor().processes()) {
    if (p->exited || !p->seeded) continue;
    auto st = tracer_->rss_state(p->pid);
    // No change seen since it was traced (6.1 counts a thread's first
    // faults in its own cache, unseen): /proc's counters until the BPF
    // side's base replaces them.
    if (!st && !model->kernel_counters(p->pid)) st = status_counters(p->pid);
    if (!st) continue;
    auto bytes = [](int64_t pages) { return pages > 0 ? static_cast<uint64_t>(pages) * kPageSize : 0; };
    const KernelRss k{bytes(st->pages[VMAT_MM_FILE]), bytes(st->pages[VMAT_MM_ANON]), bytes(st->pages[VMAT_MM_SWAP]),
                      bytes(st->pages[VMAT_MM_SHMEM])};
    if (model->kernel_counters(p->pid) == k) continue;
    vmat_rss_stat_event e{};
    e.hdr = make_header(VMAT_EV_RSS_STAT, monotonic_ns(), p->pid, p->pid, p->comm);
    e.hdr.size = sizeof(e);
    e.flags = VMAT_RSS_STAT_BASE;
    e.mm_key = st->mm;
    std::copy(std::begin(st->pages), std::end(st->pages), std::begin(e.pages));
    out.push_back(e);
  }
  // Handled after the walk: a record may change the process list.
  for (const auto& e : out) handle(std::as_bytes(std::span(&e, 1)));
}

bool Session::done() const {
  if (stop_requested_) return true;
  // A service, or programs by name: traced until interrupted.
  if (opts_.loader.cgroup_id || !opts_.loader.comm.empty()) return false;
  if (child_ > 0 && !child_status_) return false;
  if (recount_ || periodic_due_) {
    traced_ = tracer_->traced_count();
    // Counted at every turn until the next tick: the BPF side drops an
    // exiting process just after it submits the exit record, which may be
    // handled first.
    if (periodic_due_) recount_ = false;
  }
  return traced_ == 0;
}

int Session::run() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  struct sigaction sc {};
  sc.sa_handler = on_sigchld;
  sc.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  ::sigemptyset(&sc.sa_mask);
  ::sigaction(SIGCHLD, &sc, nullptr);
  auto banner = [&](const std::string& target) {
    if (!opts_.quiet) std::fprintf(stderr, "%s\n", banner_text(target, opts_.follow, plan_, attach_ns_).c_str());
  };
  if (!opts_.cgroup.empty()) {
    const size_t members = attach_cgroup();
    banner("cgroup " + escape_text(opts_.cgroup) + " (" + std::to_string(members) +
           " processes now, and those that join it)");
  } else if (!opts_.loader.comm.empty()) {
    banner("every process named '" + escape_text(opts_.loader.comm) + "' from its exec");
  } else if (opts_.pid) {
    attach(*opts_.pid);
    banner("pid " + std::to_string(*opts_.pid) + " (" + escape_text(read_comm(*opts_.pid)) + ")");
  } else {
    if (opts_.command.empty()) throw UserError("no command given after --");
    if (resolve_command(opts_.command[0]).empty()) throw UserError("command not found: " + opts_.command[0], 127);
    resolve_run_as(opts_.user);  // an unknown --user fails before the banner
    std::string cmd;
    for (const auto& a : opts_.command) cmd += (cmd.empty() ? "" : " ") + escape_text(a);
    banner("'" + cmd + "'");
    spawn(opts_.command);
  }
  while (!done()) {
    if (g_signal.load()) {
      stop_requested_ = true;
      break;
    }
    step(idle_wait_ms());
  }
  return finish();
}

int Session::finish() {
  if (stop_requested_) {
    // Detaching: the traced processes keep running and producing. Stop their
    // events reaching the ring buffer first: those we know, and those whose
    // fork is still in the ring.
    check_losses();
    for (const auto* p : pipeline_.processor().processes()) tracer_->untrace_pid(p->pid);
    if (child_ > 0) tracer_->untrace_pid(static_cast<uint32_t>(child_));
    tracer_->untrace_all();
  }
  // Where the recording's coverage ends (its trailer's end_ts): a quiet
  // process has no record near the end, yet replay --at must know that a
  // moment until here was traced. The drains below read the ring up to
  // where it was then: a producer faster than us (a process that joins the
  // cgroup after this, a sanitizer build, a slow disk) cannot keep them
  // going; what it wrote after is left unread, and counted.
  const uint64_t traced_until = monotonic_ns();
  stop_pos_ = tracer_->queued_until();
  final_drain_ = true;
  drain();
  // What the untraced processes wrote past the stop (a syscall in flight
  // then, an exit) is read before the losses are reported: a process that
  // is gone gets its loss record after its last records, not before them.
  report_unread(traced_until);
  check_losses();
  drain();
  collect_fault_summary();
  {
    const uint64_t now = monotonic_ns();
    std::vector<std::pair<uint32_t, std::string>> alive;
    for (const auto* p : pipeline_.processor().processes())
      if (!p->exited) alive.emplace_back(p->pid, p->comm);
    for (const auto& [pid, comm] : alive) store_jit_map(pid, now, comm);
  }
  // Read while the programs are still attached; printed after the events.
  const std::vector<ProgramStats> bpf_stats =
      opts_.loader.bpf_stats ? tracer_->program_stats() : std::vector<ProgramStats>{};
  std::optional<FaultVmaLookups> fault_lookups;
  if (opts_.loader.bpf_stats && opts_.loader.fault_summary) fault_lookups = tracer_->fault_vma_lookups();
  pipeline_.finish();
  printer_->flush();
  if (fault_report_) {
    // After the events, on the same stream: `trace --summary > out` keeps
    // both, and with --json the report is the last line.
    std::string r = opts_.print.format == OutputFormat::kJson
                        ? "{\"event\":\"fault_report\"," + fault_report_->json().substr(1) + "\n"
                        : "\n" + fault_report_->text();
    std::fputs(r.c_str(), opts_.out);
    std::fflush(opts_.out);
  }
  if (opts_.loader.bpf_stats && opts_.print.format == OutputFormat::kJson && opts_.print.events) {
    std::fputs((bpf_stats_json(bpf_stats, fault_lookups) + "\n").c_str(), opts_.out);
    std::fflush(opts_.out);
  }
  // Every loss the kernel counted was reported as a loss record: say so if not.
  const uint64_t lost_in_kernel = tracer_->lost_in_kernel();
  if (lost_in_kernel != losses_.dropped())
    std::fprintf(stderr,
                 "vmatrace: the kernel failed to deliver %" PRIu64 " records but %" PRIu64 " were reported lost\n",
                 lost_in_kernel, losses_.dropped());
  if (recorder_)
    recorder_->close({{"lost", std::to_string(losses_.total())},
                      {"lost_in_kernel", std::to_string(lost_in_kernel)},
                      {"end_ts", std::to_string(traced_until)}});
  if (opts_.summary && !opts_.quiet) {
    std::fprintf(
        stderr, "%s\n",
        summary_text(pipeline_.processor().stats(), event_counts(), losses_.total(), pipeline_.malformed()).c_str());
    if (not_followed_)
      std::fprintf(stderr,
                   "vmatrace: %" PRIu64
                   " %s exited before vmatrace could check that you may ptrace %s: not followed, "
                   "%s events left out (-v names them; with CAP_SYS_PTRACE every process is followed)\n",
                   not_followed_, not_followed_ == 1 ? "process" : "processes", not_followed_ == 1 ? "it" : "them",
                   not_followed_ == 1 ? "its" : "their");
    if (rss_scanner_)
      std::fprintf(stderr, "vmatrace: rss: %" PRIu64 " residency scans took %.1f ms of CPU\n", rss_scanner_->scans(),
                   static_cast<double>(rss_scanner_->cpu_ns()) / 1e6);
    if (malloc_report_ && malloc_report_->growths())
      std::fprintf(stderr, "vmatrace: %s", malloc_report_->text(10).c_str());
  }
  if (opts_.loader.bpf_stats && !opts_.quiet) std::fputs(bpf_stats_text(bpf_stats, fault_lookups).c_str(), stderr);
  if (child_ > 0 && !child_status_) {
    // Interrupted: leave the command running, as strace does on detach.
    return 128 + (g_signal.load() ? g_signal.load() : SIGINT);
  }
  if (child_status_) return *child_status_;
  return g_signal.load() ? 128 + g_signal.load() : 0;
}

}  // namespace vmatrace
