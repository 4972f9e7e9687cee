#include "trace/bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "trace/fault_perf.h"
#include "util/errors.h"
#include "vmatrace/abi/events.h"
#include "vmatrace/abi/syscalls.h"
#include "vmatrace_bpf.skel.h"

namespace vmatrace {
namespace {

std::string g_libbpf_log;
bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Whole verifier logs come through here in one message: size to fit.
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, again);
  va_end(again);
  if (n <= 0) return 0;
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(buf.data(), buf.size(), fmt, args);
  buf.pop_back();
  if (g_verbose) std::fputs(buf.c_str(), stderr);
  if (level != LIBBPF_DEBUG && g_libbpf_log.size() < (1 << 16)) g_libbpf_log += buf;
  return 0;
}

// The program of each family and mode, named by flavour as libbpf-tools
// does (x_fexit, x_kprobe, x_tp, x_raw, x_iter).
struct ProgramChoice {
  Family family;
  AttachMode mode;
  std::vector<bpf_program*> programs;
};

// Each syscall's program per flavour, one row per row of VMAT_SYSCALLS.
// Each fexit program's target (__x64_sys_NAME) is in its SEC name, so
// libbpf resolves its BTF id at load and bpf_program__attach works; that is
// also why a syscall the kernel lacks must not be loaded at all (plan.absent).
struct SyscallPrograms {
  const char* name;
  bpf_program *fexit, *kprobe, *tp;
};

std::vector<SyscallPrograms> syscall_programs(const struct ::vmatrace_bpf* s) {
#define VMAT_SYSCALL_PROGRAMS_ROW(name, ...) \
  SyscallPrograms{#name, s->progs.name##_fexit, s->progs.name##_kprobe, s->progs.name##_enter_tp},
  return {VMAT_SYSCALLS(VMAT_SYSCALL_PROGRAMS_ROW)};
#undef VMAT_SYSCALL_PROGRAMS_ROW
}

// Name removals: the files family's tracepoints (bpf/files.bpf.c).
constexpr const char* kFilesTracepoints[] = {"sys_exit_unlink", "sys_exit_unlinkat", "sys_exit_rename",
                                             "sys_exit_renameat", "sys_exit_renameat2"};

// The capabilities loading needs that this process lacks, from CapEff in
// /proc/self/status: a permission error then names what to grant instead of
// a generic "run as root" (e.g. under capsh or a systemd CapabilityBoundingSet).
std::string missing_capabilities() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return "";
  unsigned long long eff = 0;
  bool found = false;
  char line[256];
  while (std::fgets(line, sizeof(line), f))
    if (std::sscanf(line, "CapEff: %llx", &eff) == 1) {
      found = true;
      break;
    }
  std::fclose(f);
  if (!found) return "";
  constexpr int kCapBpf = 39, kCapPerfmon = 38;  // linux/capability.h
  std::string m;
  if (!(eff >> kCapBpf & 1)) m = "CAP_BPF";
  if (!(eff >> kCapPerfmon & 1)) m += std::string(m.empty() ? "" : " and ") + "CAP_PERFMON";
  return m;
}

[[noreturn]] void fail(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES) {
    std::string missing = missing_capabilities();
    if (!missing.empty())
      msg += " (missing " + missing + ": run as root, or grant CAP_BPF and CAP_PERFMON; e.g. sudo vmatrace ...)";
    else
      msg += " (run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN for tracefs; e.g. sudo vmatrace ...)";
  }
  throw UserError(msg);
}

}  // namespace

void BpfTracer::SkelDeleter::operator()(struct ::vmatrace_bpf* s) const { vmatrace_bpf__destroy(s); }
void BpfTracer::LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }

// What select_programs() picked, for the attach steps.
struct BpfTracer::Selection {
  std::vector<bpf_program*> chosen;          // attached in this order
  std::vector<const char*> traced_syscalls;  // the shared exit programs attach to each of these
  bool files = false;                        // files_exit_tp rides along
  bool cred_exits = false;                   // process_cred_exit_tp judges credential changes
};

BpfTracer::BpfTracer(const AttachPlan& plan, const LoaderOptions& opts, Handler handler)
    : handler_(std::move(handler)) {
  g_verbose = opts.verbose;
  libbpf_set_print(libbpf_print);
  if (opts.bpf_stats) {
    stats_fd_ = UniqueFd(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!stats_fd_) fail("enabling BPF run-time statistics (--bpf-stats)", errno);
  }
  open();
  Selection sel = select_programs(plan);
  // --cgroup: processes moved into the cgroup are traced from their move.
  bpf_program__set_autoload(skel_->progs.process_cgroup_attach_raw, opts.cgroup_id != 0);
  if (opts.cgroup_id) sel.chosen.push_back(skel_->progs.process_cgroup_attach_raw);
  // Without CAP_SYS_PTRACE, credential changes are judged at their exits
  // (bpf/ptrace.bpf.h): by tracepoint, but in the raw flavour, whose
  // sys_exit program sees every syscall and judges them itself.
  sel.cred_exits = opts.ptrace_limit && plan.mode(Family::kSyscalls) != AttachMode::kRawTracepoint;
  bpf_program__set_autoload(skel_->progs.process_cred_exit_tp, sel.cred_exits);
  rss_stat_wanted_ = opts.rss_stat;
  bpf_program__set_autoload(skel_->progs.rss_stat_raw, opts.rss_stat);
  set_knobs(plan, opts);
  FaultPerfEvents perf;
  select_fault_perf(plan, opts, perf);
  load();
  attach_programs(sel);
  attach_files(sel);
  attach_cred_exits(sel);
  attach_fault_perf(perf);
  attach_rss_stat();
  open_ring();
}

void BpfTracer::open() {
  skel_.reset(vmatrace_bpf__open());
  if (!skel_) fail("opening the BPF object", errno);
}

BpfTracer::Selection BpfTracer::select_programs(const AttachPlan& plan) {
  auto* s = skel_.get();
  Selection sel;
  const auto& absent = plan.families.at(Family::kSyscalls).absent;
  std::vector<bpf_program*> fexit, kprobe = {s->progs.syscalls_kretprobe}, tp = {s->progs.syscalls_exit_tp};
  for (const auto& sc : syscall_programs(s)) {
    bool missing = std::find(absent.begin(), absent.end(), sc.name) != absent.end();
    for (auto* p : {sc.fexit, sc.kprobe, sc.tp}) bpf_program__set_autoload(p, false);
    if (missing) continue;
    sel.traced_syscalls.push_back(sc.name);
    fexit.push_back(sc.fexit);
    kprobe.push_back(sc.kprobe);
    tp.push_back(sc.tp);
  }
  const ProgramChoice all[] = {
      {Family::kSyscalls, AttachMode::kFentry, fexit},
      {Family::kSyscalls, AttachMode::kKprobe, kprobe},
      {Family::kSyscalls, AttachMode::kTracepoint, tp},
      {Family::kSyscalls, AttachMode::kRawTracepoint, {s->progs.syscalls_enter_raw, s->progs.syscalls_exit_raw}},
      {Family::kFaults, AttachMode::kRawTracepoint, {s->progs.fault_user_raw, s->progs.fault_kernel_raw}},
      {Family::kProcess,
       AttachMode::kRawTracepoint,
       {s->progs.process_fork_raw, s->progs.process_exec_raw, s->progs.process_exit_raw}},
      {Family::kExecLayout, AttachMode::kKfuncIter, {s->progs.exec_layout_iter}},
      {Family::kVma, AttachMode::kFentry, {s->progs.vma_mas_store_fentry, s->progs.vma_perf_mmap_fentry}},
      {Family::kVma, AttachMode::kKprobe, {s->progs.vma_mas_store_kprobe, s->progs.vma_perf_mmap_kprobe}},
      {Family::kVma, AttachMode::kRawTracepoint, {s->progs.vma_store_raw}},
  };
  for (const auto& c : all) {
    bool on = plan.mode(c.family) == c.mode;
    for (auto* p : c.programs) {
      bpf_program__set_autoload(p, on);
      if (on) sel.chosen.push_back(p);
    }
  }
  // Name removals ride along with the syscall family wherever classic
  // tracepoints work (the raw fallback means tracefs is unusable); without
  // them the Session still notices "(deleted)" files, later, by polling.
  sel.files =
      plan.mode(Family::kSyscalls) != AttachMode::kRawTracepoint && plan.mode(Family::kSyscalls) != AttachMode::kNone;
  bpf_program__set_autoload(s->progs.files_exit_tp, sel.files);
  return sel;
}

void BpfTracer::set_knobs(const AttachPlan& plan, const LoaderOptions& opts) {
  auto* s = skel_.get();
  bpf_map__set_max_entries(s->maps.vmat_events, static_cast<uint32_t>(opts.ringbuf_bytes));
  s->rodata->vmat_wakeup_bytes = opts.wakeup_bytes;
  s->rodata->vmat_stop_on_exec = plan.mode(Family::kExecLayout) == AttachMode::kProcfs;
  s->rodata->vmat_cgroup_id = opts.cgroup_id;
  s->rodata->vmat_ptrace_limit = opts.ptrace_limit;
  s->rodata->vmat_ptrace_uid = opts.ptrace_uid;
  s->rodata->vmat_ptrace_gid = opts.ptrace_gid;
  s->rodata->vmat_ptrace_caps = opts.ptrace_caps;
  // --comm: at most VMAT_COMM_LEN - 1 bytes (the CLI refuses longer), NUL-padded.
  for (size_t i = 0; i + 1 < sizeof(s->rodata->vmat_comm_filter); i++)
    s->rodata->vmat_comm_filter[i] = i < opts.comm.size() ? opts.comm[i] : '\0';
  s->rodata->vmat_ustack_bytes = opts.ustack_bytes;
  s->rodata->vmat_ustack_min_mmap = opts.ustack_min_mmap;
  // VMA identities in records are salted kernel addresses: a recording
  // must not hand out kernel pointers (KASLR).
  uint64_t salt = 0;
  if (::getrandom(&salt, sizeof(salt), 0) != sizeof(salt))
    salt = 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(::getpid());
  s->rodata->vmat_vma_key_salt = salt;
  // The --faults=summary tables are preallocated hashes (filled at map
  // creation: ~0.3 s for vmat_fsum_vma alone here): the smallest size when
  // faults are streamed.
  if (!opts.fault_summary)
    for (bpf_map* m : {s->maps.vmat_fsum_vma, s->maps.vmat_fsum_page, s->maps.vmat_fsum_ip, s->maps.vmat_fsum_thread})
      bpf_map__set_max_entries(m, 1);
}

// Major/minor from the perf software events, opened before the load
// because whether they exist decides how the fault programs behave.
void BpfTracer::select_fault_perf(const AttachPlan& plan, const LoaderOptions& opts, FaultPerfEvents& perf) {
  auto* s = skel_.get();
  if (plan.mode(Family::kFaults) != AttachMode::kNone && opts.cgroup_id == 0 && opts.comm.empty()) {
    // Every traced process is one trace_pid() names or a descendant of one:
    // the events go on its threads there (attach_task_fault_perf), and
    // whether they open is tried on this thread now (closed at once,
    // before anything forks).
    FaultPerfEvents probe = FaultPerfEvents::open_task(0);
    fault_perf_ = probe.ok();
    fault_perf_error_ = probe.error;
    fault_perf_per_task_ = fault_perf_;
  } else if (plan.mode(Family::kFaults) != AttachMode::kNone) {
    // Processes join by themselves (--cgroup, --comm): only per-CPU events see them.
    perf = FaultPerfEvents::open();
    fault_perf_ = perf.ok();
    fault_perf_error_ = perf.error;
  } else {
    fault_perf_error_ = "faults are off";
  }
  bpf_program__set_autoload(s->progs.fault_major_perf, fault_perf_);
  bpf_program__set_autoload(s->progs.fault_minor_perf, fault_perf_);
  s->rodata->vmat_fault_perf = fault_perf_ ? 1 : 0;
  s->rodata->vmat_fault_summary = opts.fault_summary ? 1 : 0;
}

void BpfTracer::load() {
  g_libbpf_log.clear();
  if (int err = vmatrace_bpf__load(skel_.get())) {
    std::string detail;
    if (auto pos = g_libbpf_log.find("failed to load"); pos != std::string::npos)
      detail = " [" + g_libbpf_log.substr(pos, g_libbpf_log.find('\n', pos) - pos) + "]";
    fail("loading the BPF programs" + detail, -err);
  }
}

template <typename Attach>
void BpfTracer::add_link(const std::string& what, Attach attach) {
  bpf_link* link = attach();
  if (!link) fail(what, errno);
  links_.emplace_back(link);
}

void BpfTracer::attach_programs(const Selection& sel) {
  auto* s = skel_.get();
  for (auto* p : sel.chosen) {
    // The exit halves serve every syscall: one link per traced syscall.
    if (p == s->progs.syscalls_exit_tp) {
      for (const char* name : sel.traced_syscalls) {
        const std::string tp = std::string("sys_exit_") + name;
        add_link("attaching syscalls_exit_tp to " + tp,
                 [&] { return bpf_program__attach_tracepoint(p, "syscalls", tp.c_str()); });
      }
    } else if (p == s->progs.syscalls_kretprobe) {
      for (const char* name : sel.traced_syscalls) {
        const std::string fn = std::string("__x64_sys_") + name;
        add_link("attaching syscalls_kretprobe to " + fn,
                 [&] { return bpf_program__attach_kprobe(p, /*retprobe=*/true, fn.c_str()); });
      }
    } else {
      add_link(std::string("attaching ") + bpf_program__name(p), [&] { return bpf_program__attach(p); });
    }
  }
}

void BpfTracer::attach_files(const Selection& sel) {
  if (!sel.files) return;
  for (const char* tp : kFilesTracepoints)
    add_link(std::string("attaching files_exit_tp to ") + tp,
             [&] { return bpf_program__attach_tracepoint(skel_->progs.files_exit_tp, "syscalls", tp); });
}

void BpfTracer::attach_cred_exits(const Selection& sel) {
  if (!sel.cred_exits) return;
#define VMAT_CRED_TP_ROW(name, nr) "sys_exit_" #name,
  constexpr const char* kCredTracepoints[] = {VMAT_CRED_SYSCALLS(VMAT_CRED_TP_ROW)};
#undef VMAT_CRED_TP_ROW
  // A missing one is fatal: a credential change that is not judged would
  // let the trace go on where the user may not ptrace.
  for (const char* tp : kCredTracepoints)
    add_link(std::string("attaching process_cred_exit_tp to ") + tp,
             [&] { return bpf_program__attach_tracepoint(skel_->progs.process_cred_exit_tp, "syscalls", tp); });
}

void BpfTracer::attach_fault_perf(FaultPerfEvents& perf) {
  if (!fault_perf_) return;
  // The link takes each fd over (libbpf closes it with the link).
  const std::pair<bpf_program*, std::vector<UniqueFd>*> events[] = {{skel_->progs.fault_major_perf, &perf.major},
                                                                    {skel_->progs.fault_minor_perf, &perf.minor}};
  for (const auto& ev : events) {
    for (auto& fd : *ev.second) {
      add_link(std::string("attaching ") + bpf_program__name(ev.first) + " to its perf event",
               [&] { return bpf_program__attach_perf_event(ev.first, fd.get()); });
      fd.release();
    }
  }
}

namespace {

// The thread ids in /proc/TGID/task now; none when the process is gone.
std::vector<pid_t> threads_of(uint32_t tgid) {
  std::vector<pid_t> tids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(tgid) + "/task", ec)) {
    pid_t tid = 0;
    const std::string name = entry.path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), tid).ec == std::errc{} && tid > 0) tids.push_back(tid);
  }
  return tids;
}

}  // namespace

// Each thread of tgid gets the pair of events, inherited by what it creates
// (forks, threads). The process is usually held still meanwhile (Session's
// ProcessFreeze); when it is not, a thread started during the walk by one
// not yet given its events has none: the walk repeats until it finds no
// thread it has not seen. A thread started by one that already had them
// inherits them and may be given a second pair too: the BPF side (on_perf)
// drops the second delivery of one fault. Past kMaxTaskPerfThreads threads
// given events this way (four file descriptors each: two events, two
// links), or should a thread's events not open, the per-CPU events take
// over from here for every process (the same deduplication covers the
// threads that have both).
void BpfTracer::attach_task_fault_perf(uint32_t tgid) {
  std::set<pid_t> seen;
  for (int pass = 0; pass < 8; pass++) {
    bool fresh = false;
    for (pid_t tid : threads_of(tgid)) {
      if (!seen.insert(tid).second) continue;
      fresh = true;
      if (task_perf_threads_ >= kMaxTaskPerfThreads) {
        fall_back_to_cpu_fault_perf("more than " + std::to_string(kMaxTaskPerfThreads) + " threads");
        return;
      }
      FaultPerfEvents ev = FaultPerfEvents::open_task(tid);
      if (!ev.error.empty()) {
        fall_back_to_cpu_fault_perf(ev.error);
        return;
      }
      if (!ev.major.empty()) task_perf_threads_++;  // none when the thread just ended
      attach_fault_perf(ev);
    }
    if (!fresh) return;
  }
}

void BpfTracer::fall_back_to_cpu_fault_perf(const std::string& why) {
  FaultPerfEvents cpus = FaultPerfEvents::open();
  if (!cpus.ok()) throw UserError("major/minor faults: events per thread: " + why + "; per CPU: " + cpus.error);
  fault_perf_per_task_ = false;
  attach_fault_perf(cpus);
}

// Not fatal: a kernel without the tracepoint (before 5.5) still has the
// events and the scans; the Session says what is estimated instead.
void BpfTracer::attach_rss_stat() {
  if (!rss_stat_wanted_) return;
  if (bpf_link* link = bpf_program__attach(skel_->progs.rss_stat_raw))
    links_.emplace_back(link);
  else
    rss_stat_error_ = std::string("attaching the rss_stat tracepoint failed: ") + std::strerror(errno);
}

std::optional<vmat_rss_state> BpfTracer::rss_state(uint32_t tgid) const {
  vmat_traced t{};
  if (bpf_map__lookup_elem(skel_->maps.vmat_traced_pids, &tgid, sizeof(tgid), &t, sizeof(t), 0) != 0 || !t.rss.mm)
    return std::nullopt;
  t.rss.mm ^= skel_->rodata->vmat_vma_key_salt;
  return t.rss;
}

void BpfTracer::open_ring() {
  try {
    ring_ = std::make_unique<RingReader>(bpf_map__fd(skel_->maps.vmat_events));
  } catch (const std::system_error& e) {
    fail("creating the ring buffer reader", e.code().value());
  }
}

namespace {

// Closing a tracepoint or raw-tracepoint link waits for an RCU grace period
// (30-95 ms each on 6.18, one after another: 1-3 s for the ~30 links of a
// trace), paid by whoever drops the last reference. A helper process holds
// copies of the link fds until we have closed ours (then only a reference
// each is dropped, at once), and then pays. It keeps nothing else open (a
// pipe's write end would hold back the reader's EOF) and never returns into
// our code (stdio buffers, destructors): close_range(), read(), _exit().
// The double fork leaves it to init, nobody's child to wait for. Its
// programs find an empty traced set meanwhile (release_links() clears it).
class BackgroundCloser {
 public:
  explicit BackgroundCloser(std::vector<int> keep) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC)) return;  // the closes then wait in the caller: slower, not wrong
    UniqueFd rd(p[0]);
    go_ = UniqueFd(p[1]);
    keep.push_back(rd.get());
    std::sort(keep.begin(), keep.end());
    const pid_t mid = ::fork();
    if (mid < 0) {
      go_ = UniqueFd();
      return;
    }
    if (mid == 0) {
      if (::fork() == 0) hold_then_close(keep, rd.get());
      ::_exit(0);
    }
    int st = 0;
    while (::waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  // Call after our own copies are closed: the helper closes its copies now.
  void go() { go_ = UniqueFd(); }

 private:
  [[noreturn]] static void hold_then_close(const std::vector<int>& keep, int rd) {
    unsigned lo = 0;
    for (int fd : keep) {
      if (static_cast<unsigned>(fd) > lo) ::close_range(lo, static_cast<unsigned>(fd) - 1, 0);
      lo = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(lo, ~0u, 0);
    char c;
    while (::read(rd, &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);  // closes the links: the grace periods pass here
  }

  UniqueFd go_;  // the helper waits for EOF on its other end
};

}  // namespace

void BpfTracer::release_links() {
  if (links_.empty()) return;
  untrace_all();
  std::vector<int> fds;
  fds.reserve(links_.size());
  for (const auto& l : links_) fds.push_back(bpf_link__fd(l.get()));
  BackgroundCloser closer(std::move(fds));
  links_.clear();
  closer.go();
}

BpfTracer::~BpfTracer() { release_links(); }

// At most this many records per poll() or drain(): reading until the ring
// is empty never ends while producers outrun us (a sanitizer build, a
// loaded machine), and then nothing else (signals, loss checks) would run.
constexpr int kBatch = 4096;

void BpfTracer::trace_pid(uint32_t tgid, bool follow, bool wait_exec) {
  vmat_traced t{};
  t.follow = follow ? 1 : 0;
  t.wait_exec = wait_exec ? 1 : 0;
  // The bitmap first (common.bpf.h, vmat_maybe_traced): the programs look
  // in the map only for a process whose bit is set. Atomically: the kernel
  // sets and clears other processes' bits in the same word.
  __atomic_fetch_or(&skel_->bss->vmat_traced_bits[(tgid >> 6) % std::size(skel_->bss->vmat_traced_bits)],
                    uint64_t{1} << (tgid & 63), __ATOMIC_SEQ_CST);
  if (bpf_map__update_elem(skel_->maps.vmat_traced_pids, &tgid, sizeof(tgid), &t, sizeof(t), BPF_ANY))
    fail("adding pid " + std::to_string(tgid) + " to the traced set", errno);
  if (fault_perf_per_task_) attach_task_fault_perf(tgid);
}

void BpfTracer::untrace_pid(uint32_t tgid) {
  bpf_map__delete_elem(skel_->maps.vmat_traced_pids, &tgid, sizeof(tgid), 0);
  bpf_map__delete_elem(skel_->maps.vmat_lost, &tgid, sizeof(tgid), 0);
}

void BpfTracer::untrace_all() {
  uint32_t key = 0;
  while (bpf_map__get_next_key(skel_->maps.vmat_traced_pids, nullptr, &key, sizeof(key)) == 0)
    if (bpf_map__delete_elem(skel_->maps.vmat_traced_pids, &key, sizeof(key), 0)) break;
}

bool BpfTracer::is_traced(uint32_t tgid) const {
  vmat_traced t{};
  return bpf_map__lookup_elem(skel_->maps.vmat_traced_pids, &tgid, sizeof(tgid), &t, sizeof(t), 0) == 0;
}

size_t BpfTracer::traced_count() const {
  size_t n = 0;
  uint32_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.vmat_traced_pids, prev, &next, sizeof(next)) == 0) {
    n++;
    key = next;
    prev = &key;
  }
  return n;
}

int BpfTracer::poll(int timeout_ms) {
  try {
    ring_->wait(timeout_ms);  // woken or not, read what is there
  } catch (const std::system_error& e) {
    fail("reading the ring buffer", e.code().value());
  }
  return drain();
}

int BpfTracer::drain(uint64_t until) {
  int handled = 0;
  return ring_->consume(
      [&](std::span<const std::byte> rec) {
        handler_(rec);
        return ++handled < kBatch;
      },
      until);
}

uint64_t BpfTracer::queued_until() const { return ring_->produced(); }

uint64_t BpfTracer::read_until() const { return ring_->consumed(); }

namespace {

// The pid in a record's header; 0 for one too short to have a header (the
// pipeline counts it as malformed).
uint32_t record_pid(std::span<const std::byte> rec) {
  vmat_hdr h{};
  if (rec.size() >= sizeof(h)) std::memcpy(&h, rec.data(), sizeof(h));
  return h.pid;
}

}  // namespace

void BpfTracer::drain_untraced(std::map<uint32_t, uint64_t>& skipped) {
  std::map<uint32_t, bool> traced;  // looked up once per process
  ring_->consume(
      [&](std::span<const std::byte> rec) {
        const uint32_t pid = record_pid(rec);
        auto [it, fresh] = traced.try_emplace(pid);
        if (fresh) it->second = pid != 0 && is_traced(pid);
        if (it->second)
          skipped[pid]++;
        else
          handler_(rec);
        return true;
      },
      ring_->produced());
}

std::map<uint32_t, uint64_t> BpfTracer::unread() {
  std::map<uint32_t, uint64_t> out;
  ring_->peek([&](std::span<const std::byte> rec) { out[record_pid(rec)]++; });
  return out;
}

std::map<uint32_t, uint64_t> BpfTracer::lost() const {
  std::map<uint32_t, uint64_t> out;
  uint32_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.vmat_lost, prev, &next, sizeof(next)) == 0) {
    uint64_t v = 0;
    if (bpf_map__lookup_elem(skel_->maps.vmat_lost, &next, sizeof(next), &v, sizeof(v), 0) == 0) out[next] = v;
    key = next;
    prev = &key;
  }
  return out;
}

void BpfTracer::forget_lost(uint32_t tgid) {
  // ENOENT: already gone; nothing else can fail on a hash map delete.
  (void)bpf_map__delete_elem(skel_->maps.vmat_lost, &tgid, sizeof(tgid), 0);
}

uint64_t BpfTracer::lost_in_kernel() const {
  uint32_t zero = 0;
  uint64_t n = 0;
  if (bpf_map__lookup_elem(skel_->maps.vmat_lost_all, &zero, sizeof(zero), &n, sizeof(n), 0) != 0)
    throw std::runtime_error(std::string("reading the loss counter: ") + std::strerror(errno));
  return n;
}

namespace {

// Every (key, value) of a hash map whose key passes `want`, deleted as read.
template <typename K, typename V, typename Want>
std::vector<std::pair<K, V>> take_entries(bpf_map* map, Want want) {
  std::vector<K> keys;
  K key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof(K)) == 0) {
    if (want(next)) keys.push_back(next);
    key = next;
    prev = &key;
  }
  std::vector<std::pair<K, V>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    V v{};
    if (bpf_map_lookup_and_delete_elem(bpf_map__fd(map), &k, &v) == 0) out.emplace_back(k, v);
  }
  return out;
}

}  // namespace

FaultSummaryData BpfTracer::take_fault_summary(std::optional<uint32_t> tgid) {
  auto* s = skel_.get();
  auto want = [&](const auto& k) { return !tgid || k.tgid == *tgid; };
  FaultSummaryData d;
  d.vmas = take_entries<vmat_fsum_vma_key, vmat_fsum_vma_val>(s->maps.vmat_fsum_vma, want);
  for (const auto& [k, chunk] : take_entries<vmat_fsum_addr_key, vmat_fsum_page_chunk>(s->maps.vmat_fsum_page, want))
    for (uint32_t i = 0; i < VMAT_FSUM_CHUNK_PAGES; i++)
      if (chunk.faults[i]) d.pages.push_back({{k.tgid, 0, (k.addr << VMAT_FSUM_CHUNK_SHIFT) | i}, chunk.faults[i]});
  d.ips = take_entries<vmat_fsum_addr_key, vmat_fault_counts>(s->maps.vmat_fsum_ip, want);
  d.threads = take_entries<vmat_fsum_thread_key, vmat_fault_counts>(s->maps.vmat_fsum_thread, want);
  for (uint32_t i = 0; i < VMAT_FSUM_NMAPS; i++)
    bpf_map__lookup_elem(s->maps.vmat_fsum_dropped, &i, sizeof(i), &d.dropped[i], sizeof(uint64_t), 0);
  return d;
}

FaultVmaLookups BpfTracer::fault_vma_lookups() const {
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) fail("counting the possible CPUs", -ncpus);
  uint64_t sum[VMAT_FSUM_NLOOKUPS] = {};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t i = 0; i < VMAT_FSUM_NLOOKUPS; i++) {
    if (bpf_map__lookup_elem(skel_->maps.vmat_fsum_lookup, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0))
      fail("reading vmat_fsum_lookup", errno);
    for (uint64_t n : per_cpu) sum[i] += n;
  }
  return {sum[VMAT_FSUM_BY_CACHE], sum[VMAT_FSUM_BY_WALK], sum[VMAT_FSUM_BY_FIND_VMA], sum[VMAT_FSUM_NOT_FOUND]};
}

std::vector<ProgramStats> BpfTracer::program_stats() const {
  std::vector<ProgramStats> out;
  bpf_program* p = nullptr;
  bpf_object__for_each_program(p, skel_->obj) {
    const int fd = bpf_program__fd(p);
    if (fd < 0) continue;  // not loaded: the plan did not need it
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len))
      fail(std::string("reading ") + bpf_program__name(p) + "'s stats", errno);
    out.push_back({bpf_program__name(p), info.run_cnt, info.run_time_ns});
  }
  return out;
}

}  // namespace vmatrace
