#pragma once
// Owns every kernel object of a trace: the skeleton (programs, maps, links)
// and the ring buffer reader. Lifecycle as libbpf-tools does it (fsslower.c):
// open; configure: pick programs per the AttachPlan (autoload off for the
// others), set map sizes and rodata knobs; load; attach. Each step is a
// small function walking a table (the syscalls' from VMAT_SYSCALLS).
// Destruction detaches everything.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "trace/features.h"
#include "trace/ring_reader.h"
#include "util/unique_fd.h"
#include "vmatrace/abi/events.h"
#include "vmatrace/abi/fault_summary.h"

struct vmatrace_bpf;  // the bpftool skeleton
struct bpf_link;

namespace vmatrace {

struct FaultPerfEvents;

struct LoaderOptions {
  // A power of two. The kernel populates the whole mapping when the reader
  // maps it, so this is also that much of the tracer's RSS (RingReader maps
  // it once). 16 MiB: no loss on the bench's storm (200k iterations),
  // 8-thread storm or fault storm on a loaded 2-core machine.
  uint64_t ringbuf_bytes = 16ull << 20;
  uint64_t wakeup_bytes = 1ull << 20;  // force a wake-up past this fill level
  bool verbose = false;                // forward libbpf's messages to stderr
  bool fault_summary = false;          // --faults=summary: count faults in kernel maps, no records
  // --malloc=stack: user stack bytes copied at each growth syscall (0: off;
  // at most VMAT_USTACK_MAX).
  uint32_t ustack_bytes = 0;
  uint64_t ustack_min_mmap = 128 * 1024;  // smaller anonymous mmaps get no stack
  // --bpf-stats: the kernel counts each program's runs and run time
  // (BPF_ENABLE_STATS) while this trace lasts.
  bool bpf_stats = false;
  // --cgroup: the cgroup v2 id whose members (forked or moved in) are traced; 0: off.
  uint64_t cgroup_id = 0;
  // --comm: processes whose exec gives them this name are traced from it; "": off.
  std::string comm;
  // Without CAP_SYS_PTRACE: a followed process whose exec, or set*id,
  // setgroups, capset or prctl (VMAT_CRED_SYSCALLS), leaves it with
  // credentials this user may not ptrace is dropped in the kernel there
  // (VMAT_EV_EXEC_REFUSED, VMAT_EV_CRED_REFUSED). The tracer's fsuid, fsgid,
  // effective caps.
  bool ptrace_limit = false;
  uint32_t ptrace_uid = 0, ptrace_gid = 0;
  uint64_t ptrace_caps = 0;
  // --rss: the kernel's resident counters of each traced process, from the
  // rss_stat tracepoint (VMAT_EV_RSS_STAT records, VMAT_FAULT_RSS_ONE).
  bool rss_stat = false;
};

// One loaded program's cost so far (bpf_prog_info's run_cnt and
// run_time_ns; counted only while stats are enabled). A program runs for
// every process that hits its hook: the traced-set lookup is part of it.
struct ProgramStats {
  std::string name;
  uint64_t run_cnt = 0;
  uint64_t run_time_ns = 0;
};

// --faults=summary: how the kernel found each fault's VMA (enum
// vmat_fsum_lookup), summed over CPUs since load.
struct FaultVmaLookups {
  uint64_t cache = 0;      // the thread's cached VMA, still valid
  uint64_t walk = 0;       // the walk of the VMA tree
  uint64_t find_vma = 0;   // bpf_find_vma(), where the walk was not sure
  uint64_t not_found = 0;  // none: counted as not attributed
};

// The in-kernel fault aggregates of --faults=summary (fault_summary.h).
struct FaultSummaryData {
  std::vector<std::pair<vmat_fsum_vma_key, vmat_fsum_vma_val>> vmas;
  std::vector<std::pair<vmat_fsum_addr_key, uint64_t>> pages;  // addr: page number
  std::vector<std::pair<vmat_fsum_addr_key, vmat_fault_counts>> ips;
  std::vector<std::pair<vmat_fsum_thread_key, vmat_fault_counts>> threads;
  uint64_t dropped[VMAT_FSUM_NMAPS] = {};  // keys not added, maps full (cumulative)
};

class BpfTracer {
 public:
  using Handler = std::function<void(std::span<const std::byte>)>;

  // Opens, loads and attaches per `plan`. Throws UserError with a one-line
  // explanation (missing privilege, kernel refusal) on failure.
  BpfTracer(const AttachPlan& plan, const LoaderOptions& opts, Handler handler);
  ~BpfTracer();
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;

  // wait_exec: ignore the process until it execs (a command we spawn).
  void trace_pid(uint32_t tgid, bool follow, bool wait_exec = false);
  void untrace_pid(uint32_t tgid);
  // Every process out of the traced set, those whose fork the frontend has
  // not read yet too (their lost counts stay): nothing more reaches the
  // ring, except from a process that joins (--cgroup, --comm) after this.
  void untrace_all();
  bool is_traced(uint32_t tgid) const;
  size_t traced_count() const;

  // Waits up to timeout_ms for a wake-up, then drains whatever is queued
  // (records are submitted without wake-ups, so a timer drives the reads).
  // Returns the number of records handled.
  int poll(int timeout_ms);
  // At most a batch of the records queued before `until` (a queued_until()
  // taken earlier; by default whatever is there). Returns how many.
  int drain(uint64_t until = UINT64_MAX);
  // The ring's producer position: a drain bounded by it reads what was
  // queued now and nothing produced after, so it ends however fast the
  // producers are.
  uint64_t queued_until() const;
  // Where the reader is: a drain bounded by `until` that ends with this
  // still before it stopped at a record reserved and not yet committed.
  uint64_t read_until() const;
  // One pass over the records queued now, after untrace_all(): those of
  // processes no longer traced are handled (a syscall in flight at the
  // untrace completes with its record, at most one per thread), those of
  // processes traced again (they joined --cgroup or --comm since) are
  // skipped and counted per process in `skipped`.
  void drain_untraced(std::map<uint32_t, uint64_t>& skipped);
  // The records still in the ring, left unconsumed, per process (from each
  // record's header): what a reader that stops now leaves unread.
  std::map<uint32_t, uint64_t> unread();

  // Records dropped in the kernel, per traced process, since it was traced.
  std::map<uint32_t, uint64_t> lost() const;
  // Removes tgid's count once reported (a process whose exit record was lost).
  void forget_lost(uint32_t tgid);
  // Every reservation failure since load, all processes together.
  uint64_t lost_in_kernel() const;

  // Major/minor faults come from the perf software events (else unknown),
  // and why not.
  bool fault_perf() const { return fault_perf_; }
  const std::string& fault_perf_error() const { return fault_perf_error_; }
  // The events are on the traced threads (inherited by their children), not
  // on every CPU: processes not traced do not run the fault programs.
  bool fault_perf_per_task() const { return fault_perf_per_task_; }
  // LoaderOptions::rss_stat: the rss_stat tracepoint is attached (else why not).
  bool rss_stat() const { return rss_stat_error_.empty() && rss_stat_wanted_; }
  const std::string& rss_stat_error() const { return rss_stat_error_; }
  // The counters the BPF side keeps for tgid (mm salted, as in the
  // records' mm_key); nullopt when it has none (no change seen yet, gone).
  std::optional<vmat_rss_state> rss_state(uint32_t tgid) const;
  // Reads and deletes the --faults=summary entries of `tgid` (all when
  // nullopt), so no entries outlive the process they count.
  FaultSummaryData take_fault_summary(std::optional<uint32_t> tgid);
  FaultVmaLookups fault_vma_lookups() const;

  // Every loaded program's runs and run time, in the object's order
  // (all zero unless LoaderOptions::bpf_stats).
  std::vector<ProgramStats> program_stats() const;

 private:
  struct SkelDeleter {
    void operator()(struct ::vmatrace_bpf* s) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* l) const;
  };
  // Detaches every program without waiting for the kernel's grace periods
  // (bpf_loader.cpp: close_in_background).
  void release_links();

  // The construction steps, in order; each throws UserError via fail().
  struct Selection;  // the programs the plan picked (bpf_loader.cpp)
  void open();
  Selection select_programs(const AttachPlan& plan);  // autoload on for these, off for the rest
  void set_knobs(const AttachPlan& plan, const LoaderOptions& opts);
  void select_fault_perf(const AttachPlan& plan, const LoaderOptions& opts, FaultPerfEvents& perf);
  void load();
  void attach_programs(const Selection& sel);
  void attach_files(const Selection& sel);
  void attach_cred_exits(const Selection& sel);
  void attach_fault_perf(FaultPerfEvents& perf);
  void attach_task_fault_perf(uint32_t tgid);
  void fall_back_to_cpu_fault_perf(const std::string& why);
  void attach_rss_stat();
  void open_ring();
  // Keeps the link `attach()` returns; fails with `what` and errno without one.
  template <typename Attach>
  void add_link(const std::string& what, Attach attach);

  UniqueFd stats_fd_;  // BPF_ENABLE_STATS: counting while open
  std::unique_ptr<struct ::vmatrace_bpf, SkelDeleter> skel_;
  // Declared after skel_: links are destroyed before the programs.
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
  std::unique_ptr<RingReader> ring_;
  Handler handler_;
  bool fault_perf_ = false;
  bool fault_perf_per_task_ = false;
  // Threads given their own fault events so far (attach_task_fault_perf).
  static constexpr size_t kMaxTaskPerfThreads = 64;
  size_t task_perf_threads_ = 0;
  std::string fault_perf_error_;
  bool rss_stat_wanted_ = false;
  std::string rss_stat_error_;
};

}  // namespace vmatrace
