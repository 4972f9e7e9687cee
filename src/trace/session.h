#pragma once
// One trace: attach to a pid or spawn a command and run the event loop,
// feeding every record through the Pipeline (recorder tee, stages,
// processor, printer and reports) and ending with a summary. Also usable
// in-process by tests (spawn/step/drain). Beside it in src/trace/: the
// target (spawning, run-as), loss accounting, the watchers (deleted files,
// build-id notes), the fault-summary stage and the banner.

#include <sys/types.h>
#include <array>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/checkpoint.h"
#include "core/processor.h"
#include "output/printer.h"
#include "pipeline/pipeline.h"
#include "report/fault_report.h"
#include "report/malloc_report.h"
#include "sym/jit_symbols.h"
#include "trace/bpf_loader.h"
#include "trace/features.h"
#include "trace/freeze.h"
#include "trace/losses.h"
#include "trace/mount_paths.h"
#include "trace/target.h"
#include "trace/watchers.h"
#include "util/time.h"

namespace vmatrace {

class RecordingWriter;
class FaultSummaryCollector;
struct LossRecord;
class RssScanner;
class StackFreezer;
class UnwinderCache;

// --malloc: attribute heap/mmap growth to allocator calls. kStack copies the
// registers and the top of the user stack at each growth syscall only (the
// cost is per growth, not per malloc) and unwinds them in user space.
enum class MallocMode { kOff, kStack };

struct TraceOptions {
  std::optional<pid_t> pid;             // -p PID
  std::string cgroup;                   // --cgroup PATH: every member of this cgroup v2, present and future
  std::vector<std::string> command;     // -- CMD ARGS
  bool follow = true;                   // follow children
  PrinterOptions print;                 // output format and --maps
  std::FILE* out = stdout;              // where events go
  std::string record_path;              // -o FILE: record while tracing
  bool force = false;                   // overwrite an existing recording
  std::map<Family, AttachMode> forced;  // --attach
  LoaderOptions loader;
  bool summary = true;        // summary on stderr at the end
  bool fault_report = false;  // --summary: page-fault hotspots on `out` at the end
  FaultReportOptions fault_report_opts;
  bool quiet = false;  // no stderr banner (tests)
  // -u/--user NAME: run -- CMD as this user. Empty: as the user who ran
  // sudo (SUDO_UID/SUDO_GID) when we are root through sudo, else as us:
  // tracing needs root, the traced command should not get it.
  std::string user;
  MallocMode malloc = MallocMode::kStack;         // default: attribution on (cost only at growth syscalls)
  uint32_t malloc_stack_bytes = VMAT_USTACK_MAX;  // user stack copied per growth
  // --keep-stack-bytes: a recording keeps the raw user stack memory BPF
  // copied. Default: each stack is unwound as it arrives and only its
  // frames are recorded (stack memory can hold secrets).
  bool keep_stack_bytes = false;
  // --debuginfod: the symbolizer may ask the DEBUGINFOD_URLS servers (never
  // otherwise: a live trace must not stall on the network).
  bool debuginfod = false;
  // Source lines kept across runs (sym/line_cache.h): the CLI gives
  // LineCache::default_dir(); empty: none.
  std::string line_cache_dir;
  // Anonymous mmaps smaller than this are not attributed (glibc's default
  // M_MMAP_THRESHOLD: it never maps a smaller chunk unless tuned with mallopt).
  uint64_t malloc_min_mmap = 128 * 1024;
  // --rss: resident pages per VMA (docs/rss.md): the model from the events,
  // corrected by PAGEMAP_SCAN of the changed ranges at most every interval.
  bool rss = false;
  uint64_t rss_interval_ns = 100'000'000;
  // --rss-scan: "auto" (PAGEMAP_SCAN where the kernel has it, else reading
  // /proc/PID/pagemap), "pagemap_scan", "pagemap", or "events" (no scans).
  std::string rss_scan = "auto";
};

class Session {
 public:
  explicit Session(TraceOptions opts);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The whole trace; returns the exit status vmatrace should exit with.
  int run();

  // Pieces of run(), for tests driving a trace in-process.
  pid_t spawn(const std::vector<std::string>& argv);
  void attach(pid_t pid);
  // --cgroup: its members now, each attached as -p would (those that join
  // later are traced by the kernel). Returns how many.
  size_t attach_cgroup();
  // Polls the ring buffer once (up to timeout_ms) and does periodic work.
  void step(int timeout_ms);
  // The timeout run() gives step(): how long an empty ring may keep us asleep.
  int idle_wait_ms() const;
  // Handles the records queued in the kernel now, and none produced after
  // (in finish(): those queued when tracing stopped).
  void drain();
  // The end of run(): after stop() detaches (the processes run on), drains
  // what is left, closes the recording with its trailer, prints the summary.
  // Returns the exit status run() would.
  int finish();
  const Processor& processor() const { return pipeline_.processor(); }
  const AttachPlan& plan() const { return plan_; }
  // --rss: the residency model (null without --rss), and whether pid has
  // changed ranges not scanned yet (false without scans).
  const RssModel* rss() const { return pipeline_.rss(); }
  bool rss_pending(uint32_t pid) const;
  // Another sink of every applied record (a live view); before spawn/attach.
  void add_sink(RecordSink* sink) { pipeline_.add_sink(sink); }
  const Features& features() const { return features_; }
  // The exit status of the spawned command, once reaped.
  std::optional<int> child_status() const { return child_status_; }
  bool done() const;
  uint64_t attach_ns() const { return attach_ns_; }
  void stop() { stop_requested_ = true; }
  // The page-fault report (--summary or --faults=summary), else null.
  const FaultReport* fault_report() const { return fault_report_.get(); }
  // Every malloc_growth seen so far (--malloc=stack), else null.
  const MallocReport* malloc_report() const { return malloc_report_.get(); }
  // Called with each malloc_growth as it is printed (tests). Only the call
  // site has its source line, unless the output is JSON (which shows all).
  void on_malloc_growth(std::function<void(const MallocGrowth&)> f);
  // --faults=summary: moves the kernel's aggregates of pid (all when
  // nullopt) into the report and deletes them from the maps.
  void collect_fault_summary(std::optional<uint32_t> pid = std::nullopt);

 private:
  // Every growth frame's file:line is looked up only for JSON output.
  bool all_source_lines() const { return opts_.print.format == OutputFormat::kJson; }
  void handle(std::span<const std::byte> rec);
  void inject_layout(pid_t pid, LayoutReason reason, uint64_t ts);
  // pid's layout from /proc as a record, or nullopt when it is gone.
  std::optional<std::vector<std::byte>> layout_record(pid_t pid, LayoutReason reason, uint64_t ts);
  void attach_one(pid_t pid, bool required);
  // pid's layout as one consistent snapshot: the process held still while
  // it is read, and until this is dropped (handle the layout first). bytes:
  // nullopt when it is gone.
  struct LayoutSnapshot {
    std::unique_ptr<ProcessFreeze> freeze;
    std::optional<std::vector<std::byte>> bytes;
  };
  LayoutSnapshot snapshot_layout(pid_t pid, LayoutReason reason);
  void note_unfrozen(pid_t pid, const ProcessFreeze& freeze);
  ProcessFreeze::OnReaped reaped_by_freeze();
  uint64_t unfrozen_seeds_ = 0;    // read while the process ran (the freeze was refused)
  std::string last_unfrozen_why_;  // noted once per distinct reason
  void check_unknown(uint32_t pid);
  // Before a thread's first record: its ids in its own PID namespace, as a
  // VMAT_REC_NS_IDS record, when that is not ours (read from /proc once
  // per thread, not carried by every BPF record).
  void note_ns_ids(const DecodedRecord& d);
  void note_ns_ids_of(uint32_t pid, uint32_t tid, uint64_t ts);
  // --cgroup: the kernel traces a process forked or moved into the cgroup
  // by itself; its first record finds no layout: read it from /proc.
  void adopt_cgroup_member(const DecodedRecord& d);
  void seed_unknown_child(uint32_t child);
  void inject_note(const std::string& key, const std::string& value);
  // pid's JIT code names (its perf map and jitdump: sym/jit_symbols.h) as
  // jit_map records at ts, for replay to name JIT frames offline: at its
  // exit and at the trace end.
  void store_jit_map(uint32_t pid, uint64_t ts, std::string_view comm);
  bool jit_names_kept() const;
  // Where each traced process's JIT names are, found at its first record
  // while it lives (a container's files are read through its root, held
  // open until its exit).
  void note_jit_source(const DecodedRecord& d);
  void open_jitdump_of(uint32_t pid, JitSource& source) const;
  void check_losses();
  // An exit record whose count holds losses not yet reported (they happened
  // after the last check): the loss record goes into the stream before it.
  void report_exit_losses(const DecodedRecord& d);
  void report_losses();
  // Records still in the ring after the last drain: those of untraced
  // processes (syscalls in flight at the stop) are read; those of
  // processes that joined the trace after the stop (--cgroup, --comm) are
  // not: one loss record (unread) per process, and a line saying how many.
  void report_unread(uint64_t ts);
  // A loss record for pid at ts, named by its comm (the model's when it is gone).
  void write_loss(uint32_t pid, uint64_t ts, const LossRecord& loss);
  void forget_orphan_losses();
  std::set<uint32_t> orphans_;          // untraced pids whose kernel loss count remains
  std::set<uint32_t> deferred_losses_;  // pids whose loss waits one check for their exit record
  void seed_after_exec(pid_t pid);
  void check_deleted(uint64_t ts);  // ts 0: now
  void reap();
  void scan_rss(uint64_t now);
  // --rss: the kernel's counters of each traced process as the BPF side
  // keeps them, into the stream (a VMAT_RSS_STAT_BASE record each) where the
  // model's differ: the single-page changes the BPF side sends no record for.
  void sync_rss_counters();

  TraceOptions opts_;
  Features features_;
  AttachPlan plan_;
  Pipeline pipeline_;
  std::unique_ptr<Printer> printer_;
  std::unique_ptr<FaultReport> fault_report_;
  std::unique_ptr<FaultSummaryCollector> fault_collector_;  // --faults=summary
  std::unique_ptr<MallocReport> malloc_report_;
  std::function<void(const MallocGrowth&)> on_growth_;
  std::unique_ptr<RecordingWriter> recorder_;
  Checkpoint checkpoint_;                        // what the recording's checkpoints keep beside the Processor
  std::shared_ptr<UnwinderCache> unwinders_;     // shared by the freezer and the malloc stage
  std::unique_ptr<StackFreezer> stack_freezer_;  // recording without --keep-stack-bytes
  std::unique_ptr<RssScanner> rss_scanner_;      // --rss on a kernel with PAGEMAP_SCAN
  std::unique_ptr<BpfTracer> tracer_;
  LossLedger losses_;
  ObjectNotes objects_;
  DeletedFileWatch deleted_files_;
  // Records seen by type (the ring buffer's event types are small numbers).
  std::array<uint64_t, 16> type_counts_{};
  std::map<std::string, uint64_t> event_counts() const;  // for the summary line
  pid_t child_ = -1;
  std::optional<int> child_status_;
  uint64_t last_periodic_ns_ = 0;
  uint64_t last_lost_in_kernel_ = 0;  // the kernel's total at the last step
  uint64_t last_flush_ns_ = 0;
  uint64_t attach_ns_ = 0;  // probing, loading and attaching the BPF programs
  bool stop_requested_ = false;
  bool periodic_due_ = true;
  // How many processes the kernel's traced set holds, as last counted:
  // counting walks the whole BPF hash map (65536 buckets), which at every
  // loop turn was two thirds of an idle attached session's CPU. Counted at
  // each periodic tick (an exit whose record was lost), and at every turn
  // from a record or an untrace that may have changed it until that tick.
  mutable size_t traced_ = 0;
  mutable bool recount_ = true;
  bool child_exec_seen_ = false;  // the spawned command's first exec
  bool final_drain_ = false;      // run() is past its loop: drain up to stop_pos_
  uint64_t stop_pos_ = 0;         // the ring's producer position when tracing stopped
  // Without CAP_SYS_PTRACE: followed processes the user may not ptrace (a
  // child that changed uid, a setuid exec, a set*id while it runs) are
  // untraced at their fork, exec or credential-change record, and nothing
  // of theirs is recorded after it; processes
  // found at attach (-p's descendants, a cgroup's members, one that joins
  // the cgroup later) are checked before anything of theirs is read.
  // A process that exited before the check is judged by what can still be
  // known (refuse_if_not_ptraceable()); one whose permission is not
  // established so is not followed either: counted, said in the summary.
  bool limit_to_ptraceable_ = false;
  std::set<uint32_t> refused_;
  uint64_t not_followed_ = 0;
  bool may_trace(pid_t pid);
  static std::string refusal_reason(const std::string& what, uint32_t why, uint32_t uid, uint32_t euid);
  void say_stopped_following(uint32_t pid, const std::string& comm, const std::string& reason);
  void note_not_followed(pid_t pid);
  // Threads whose namespace ids were looked up (until they exit), and
  // processes found in our own PID namespace (their threads need no look-up).
  std::unordered_set<uint32_t> ns_seen_tids_;
  std::unordered_map<uint32_t, bool> ns_other_pid_;
  // Host paths of files mapped by processes in another file tree: each file
  // once per tree, as a VMAT_REC_HOST_PATH before the record naming it.
  MountPaths mount_paths_;
  void note_host_paths(const DecodedRecord& d);
  struct LiveJitSource {
    JitSource source;
    uint64_t next_look_ts = 0;  // when to look for its files again (records' clock)
  };
  std::unordered_map<uint32_t, LiveJitSource> jit_sources_;
  // True when rec is not to be handled (what it is handled as instead,
  // if anything, was handled).
  bool refuse_if_not_ptraceable(std::span<const std::byte> rec, const DecodedRecord& d);
};

}  // namespace vmatrace
