#include "trace/session.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "core/proc_maps.h"
#include "core/syscall_names.h"
#include "util/unique_fd.h"
#include "record/writer.h"
#include "util/errors.h"
#include "sym/build_id.h"
#include "sym/malloc_tracker.h"
#include "trace/procfs.h"

namespace vmatrace {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_child_event{true};

void on_signal(int sig) { g_signal.store(sig); }
void on_sigchld(int) { g_child_event.store(true); }

constexpr uint64_t kPeriodicNs = 100'000'000;  // loss checks
constexpr uint64_t kFlushNs = 1'000'000'000;   // recording chunks

// The first `argv[0]` execvp would run, or empty: lets us say "command not
// found" before forking, as a shell does.
std::string resolve_command(const std::string& cmd) {
  if (cmd.find('/') != std::string::npos) return ::access(cmd.c_str(), X_OK) == 0 ? cmd : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string full = (dir.empty() ? "." : dir) + "/" + cmd;
    struct stat st;
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0) return full;
  }
  return "";
}

std::string read_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Session::Session(TraceOptions opts) : opts_(std::move(opts)) {
  uint64_t t0 = monotonic_ns();
  features_ = probe_features();
  plan_ = plan_attach(features_, opts_.forced);
  printer_ = std::make_unique<Printer>(opts_.out, opts_.print);
  if (!opts_.record_path.empty()) {
    RecordingHeader h;
    fill_host_info(h);
    h.vmatrace_version = VMATRACE_VERSION;
    h.abi_version = VMAT_ABI_VERSION;
    h.start_ts = monotonic_ns();
    h.command = opts_.command;
    if (opts_.pid) h.pids.push_back(static_cast<uint32_t>(*opts_.pid));
    for (Family f : kAllFamilies) h.attach_modes[family_name(f)] = attach_mode_name(plan_.mode(f));
    WriterOptions wo;
    wo.force = opts_.force;
    try {
      recorder_ = std::make_unique<RecordingWriter>(opts_.record_path, h, wo);
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
  }
  if (opts_.malloc == MallocMode::kStack) {
    opts_.loader.ustack_bytes = std::min<uint32_t>(opts_.malloc_stack_bytes, VMAT_USTACK_MAX);
    opts_.loader.ustack_min_mmap = opts_.malloc_min_mmap;
    malloc_tracker_ = std::make_unique<MallocTracker>(/*live=*/true);
    malloc_report_ = std::make_unique<MallocReport>();
  }
  tracer_ = std::make_unique<BpfTracer>(plan_, opts_.loader, [this](std::span<const std::byte> r) { handle(r); });
  attach_ns_ = monotonic_ns() - t0;
  if (opts_.fault_report || opts_.loader.fault_summary) {
    fault_report_ = std::make_unique<FaultReport>(opts_.fault_report_opts);
    fault_report_->set_mode(opts_.loader.fault_summary ? "summary" : "stream");
    fault_report_->set_majmin_known(tracer_->fault_perf());
  }
  if (!tracer_->fault_perf() && plan_.mode(Family::kFaults) != AttachMode::kNone && !opts_.quiet)
    std::fprintf(stderr, "vmatrace: major/minor faults unknown (%s)\n", tracer_->fault_perf_error().c_str());
  inject_note(kNoteSessionStart, "");
  if (auto gate = read_gate_vma_line()) inject_note(kNoteGateVma, *gate);
  for (Family f : kAllFamilies) inject_note("attach." + family_name(f), attach_mode_name(plan_.mode(f)));
}

Session::~Session() = default;

void Session::handle(std::span<const std::byte> rec) {
  if (recorder_) recorder_->append(rec);
  std::string err;
  auto d = decode_record(rec, &err);
  if (!d) {
    malformed_++;
    return;
  }
  // --faults=summary: the kernel's counts of a process that ended are read
  // (and deleted) while its layout is still there to name their VMAs.
  if (opts_.loader.fault_summary && d->type == VMAT_EV_EXIT && (d->exit.flags & VMAT_EXIT_GROUP))
    collect_fault_summary(d->hdr.pid);
  // Unwinding is for what is shown: `record` keeps the raw stacks and
  // leaves the unwinding to replay and report.
  const bool attribute = malloc_tracker_ && (opts_.print.events || on_growth_);
  if (attribute) malloc_tracker_->before_apply(*d, processor_);
  if (fault_report_) {
    RecordTee tee(printer_.get(), fault_report_.get());
    processor_.apply(*d, &tee);
  } else {
    processor_.apply(*d, printer_.get());
  }
  if (attribute) {
    if (auto g = malloc_tracker_->after_apply(*d, processor_)) {
      printer_->derived(*d, "malloc_growth", growth_text(*g), growth_json_fields(*g));
      malloc_report_->add(*g);
      if (on_growth_) on_growth_(*g);
    }
  }
  if (recorder_) note_objects(*d);
  // The unlink happened at this record's time: the "(deleted)" it causes
  // belongs there, not at the next poll.
  if (d->type == VMAT_EV_FS) check_deleted(d->hdr.ts);
  forget_ended_losses(*d);
  if (d->type == VMAT_EV_SYSCALL) counts_[std::string("syscall")]++;
  else if (d->type == VMAT_EV_FAULT) counts_["fault"]++;
  else if (d->type == VMAT_EV_FORK) counts_["fork"]++;
  else if (d->type == VMAT_EV_EXEC) counts_["exec"]++;
  else if (d->type == VMAT_EV_EXIT) counts_["exit"]++;
  // Without the kernel's exec walk, a followed child was stopped at its exec
  // by the BPF side (vmat_stop_on_exec): read /proc, then let it go.
  // (The spawned command's first exec is the one ptrace stopped: spawn()
  // seeds that one.)
  if (d->type == VMAT_EV_EXEC && plan_.mode(Family::kExecLayout) == AttachMode::kProcfs) {
    if (static_cast<pid_t>(d->hdr.pid) == child_ && !child_exec_seen_) child_exec_seen_ = true;
    else seed_after_exec(d->hdr.pid);
  }
}

// A recording carries what offline symbolization needs: each mapped file's
// build-id, noted once per (dev, inode) when first seen.
void Session::note_objects(const DecodedRecord& d) {
  const vmat_vma_info* info = nullptr;
  if (d.type == VMAT_EV_SYSCALL) info = &d.sys.vma[0];
  else if (d.type == VMAT_EV_VMA_SNAPSHOT) info = &d.snap.vma;
  if (!info || !(info->state & VMAT_VMA_FILE) || d.path.empty()) return;
  if (!objects_seen_.insert({info->dev, info->ino}).second) return;
  std::string path(d.path);
  auto id = read_build_id("/proc/" + std::to_string(d.hdr.pid) + "/root" + path);
  if (!id) id = read_build_id(path);
  char devino[64];
  std::snprintf(devino, sizeof(devino), "%02x:%02x %llu", info->dev >> 20, info->dev & 0xfffff,
                static_cast<unsigned long long>(info->ino));
  inject_note("object", std::string(devino) + " " + (id ? *id : "-") + " " + path);
}

// The state letter of /proc/PID/stat, or 0 when the process is gone.
char Session::proc_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
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

void Session::inject_layout(pid_t pid, LayoutReason reason, uint64_t ts) {
  LayoutRecord l;
  try {
    l = read_proc_layout_record(pid);
  } catch (const std::exception&) {
    return;  // gone: its exit record ends it
  }
  l.reason = reason;
  auto bytes = encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, read_comm(pid)), l);
  handle(bytes);
}

std::optional<RunAs> resolve_run_as(const std::string& user) {
  auto with_groups = [](RunAs r, const char* name) {
    r.groups = {r.gid};
    if (name) {
      int n = 64;
      std::vector<gid_t> g(static_cast<size_t>(n));
      if (::getgrouplist(name, r.gid, g.data(), &n) < 0) {
        g.resize(static_cast<size_t>(n));
        if (::getgrouplist(name, r.gid, g.data(), &n) < 0) n = 0;
      }
      if (n > 0) r.groups.assign(g.begin(), g.begin() + n);
    }
    return r;
  };
  if (!user.empty()) {
    const struct passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
      // strace -u accepts only names; a number is handy in containers.
      char* end = nullptr;
      unsigned long uid = std::strtoul(user.c_str(), &end, 10);
      if (user.empty() || *end || !(pw = ::getpwuid(static_cast<uid_t>(uid))))
        throw UserError("--user " + user + ": no such user");
    }
    if (::geteuid() != 0 && pw->pw_uid != ::geteuid())
      throw UserError("--user " + user + ": only root can run the command as another user");
    return with_groups(RunAs{pw->pw_uid, pw->pw_gid, {}}, pw->pw_name);
  }
  const char* su = std::getenv("SUDO_UID");
  if (!su || !*su || ::geteuid() != 0) return std::nullopt;
  const char* sg = std::getenv("SUDO_GID");
  auto parse_id = [](const char* s, const char* what) {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(s, &end, 10);
    if (errno || !*s || *end || v > 0xfffffffeul) throw UserError(std::string("malformed ") + what + "=" + s);
    return static_cast<uint32_t>(v);
  };
  RunAs r;
  r.uid = parse_id(su, "SUDO_UID");
  if (r.uid == 0) return std::nullopt;  // sudo from root: nothing to drop
  const struct passwd* pw = ::getpwuid(r.uid);
  r.gid = sg && *sg ? parse_id(sg, "SUDO_GID") : pw ? pw->pw_gid : r.uid;
  return with_groups(r, pw ? pw->pw_name : nullptr);
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
  int go[2], status_pipe[2];
  if (::pipe2(go, O_CLOEXEC) || ::pipe2(status_pipe, O_CLOEXEC))
    throw UserError(std::string("pipe: ") + std::strerror(errno));
  UniqueFd go_r(go[0]), go_w(go[1]), st_r(status_pipe[0]), st_w(status_pipe[1]);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw UserError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    char c;
    if (::read(go_r.get(), &c, 1) != 1) ::_exit(127);
    // Drop to the invoking user before exec: groups, then gid, then uid (once
    // the uid is gone we could no longer change the others). A failure is
    // reported like a failed exec rather than running the command as root.
    if (run_as && (::setgroups(run_as->groups.size(), run_as->groups.data()) || ::setgid(run_as->gid) ||
                   ::setuid(run_as->uid))) {
      int e = errno;
      [[maybe_unused]] auto n = ::write(st_w.get(), &e, sizeof(e));
      ::_exit(126);
    }
    if (stop_at_exec) ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::execvp(cargv[0], cargv.data());
    int e = errno;
    [[maybe_unused]] auto n = ::write(st_w.get(), &e, sizeof(e));
    ::_exit(127);
  }
  go_r.reset();
  st_w.reset();
  child_ = pid;
  tracer_->trace_pid(pid, opts_.follow, /*wait_exec=*/true);
  if (::write(go_w.get(), "g", 1) != 1) throw UserError(std::string("starting the command: ") + std::strerror(errno));
  int e = 0;
  ssize_t n = ::read(st_r.get(), &e, sizeof(e));
  if (n == static_cast<ssize_t>(sizeof(e))) {
    int st;
    ::waitpid(pid, &st, 0);
    child_status_ = 127;
    throw UserError("cannot run " + argv[0] + ": " + std::strerror(e), e == ENOENT ? 127 : 126);
  }
  if (stop_at_exec) {
    int st = 0;
    if (::waitpid(pid, &st, 0) == pid && WIFSTOPPED(st)) {
      // The exec record must come first in the stream: it resets the layout
      // that this seed then fills.
      drain();
      inject_layout(pid, LayoutReason::kSpawn, monotonic_ns());
      ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    }
  }
  return pid;
}

void Session::attach(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) {
    if (errno == EPERM) throw UserError("not allowed to trace pid " + std::to_string(pid) + ": run as root");
    throw UserError("no process with pid " + std::to_string(pid));
  }
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid)).c_str(), &st) != 0)
    throw UserError("no process with pid " + std::to_string(pid));
  attached_ = pid;
  tracer_->trace_pid(pid, opts_.follow);
  // Records older than this ts are already in what /proc shows.
  uint64_t ts = monotonic_ns();
  LayoutRecord l;
  try {
    l = read_proc_layout_record(pid);
  } catch (const std::exception& ex) {
    tracer_->untrace_pid(pid);
    throw UserError("process " + std::to_string(pid) + " exited during attach");
  }
  l.reason = LayoutReason::kAttach;
  auto bytes = encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, read_comm(pid)), l);
  drain();  // what came before the seed goes first in the stream
  handle(bytes);
}

// /proc prints " (deleted)" after the path of a mapped file that was
// unlinked; nothing in the syscalls we trace says so (the unlink may come
// from any process), so look: a path that no longer leads to the same inode,
// seen from the process's own root, is deleted. Written into the stream as a
// record, so replay shows the same.
void Session::check_deleted(uint64_t ts) {
  struct Key {
    uint32_t pid, dev;
    uint64_t ino;
    std::string path;
  };
  std::vector<Key> files;
  std::set<std::pair<uint32_t, uint64_t>> seen;
  for (const auto* p : processor_.processes()) {
    for (const auto& v : p->layout.vmas()) {
      if (!v.is_file() || v.deleted || v.path.empty() || v.path[0] != '/') continue;
      if (!seen.insert({v.dev, v.ino}).second) continue;
      files.push_back({p->pid, v.dev, v.ino, v.path});
    }
  }
  for (const auto& f : files) {
    struct stat st;
    // Seen from the process's own root (containers); once it has exited
    // (records are handled after the fact), from ours.
    std::string root = "/proc/" + std::to_string(f.pid) + "/root";
    std::string where = ::access(root.c_str(), F_OK) == 0 ? root + f.path : f.path;
    bool gone;
    if (::stat(where.c_str(), &st) == 0) {
      uint32_t dev = (::major(st.st_dev) << 20) | ::minor(st.st_dev);
      gone = dev != f.dev || st.st_ino != f.ino;
    } else {
      gone = errno == ENOENT || errno == ENOTDIR;
    }
    if (!gone) continue;
    auto bytes = encode_file_deleted(make_header(VMAT_REC_FILE_DELETED, ts ? ts : monotonic_ns(), f.pid, f.pid,
                                                 "vmatrace"),
                                     FileDeletedRecord{f.dev, f.ino, f.path});
    handle(bytes);
  }
}

void Session::collect_fault_summary(std::optional<uint32_t> pid) {
  if (!fault_report_ || !opts_.loader.fault_summary) return;
  FaultSummaryData d = tracer_->take_fault_summary(pid);
  uint64_t dropped = 0;
  for (uint64_t n : d.dropped) dropped += n;
  fault_report_->add_dropped(dropped - fault_dropped_seen_);
  fault_report_->set_start_ts(processor_.start_ts());
  fault_dropped_seen_ = dropped;
  auto counts = [](const vmat_fault_counts& c) {
    FaultCounts f;
    f.faults = c.faults, f.read = c.read, f.write = c.write, f.exec = c.exec, f.major = c.major, f.minor = c.minor;
    return f;
  };
  auto comm_of = [&](uint32_t p) {
    const ProcessState* st = processor_.process(p);
    return st ? st->comm : std::string();
  };
  // Per process, the VMAs the kernel counted, to place pages in them.
  std::map<uint32_t, std::map<uint64_t, uint64_t>> extents;  // start -> end
  for (const auto& [k, v] : d.vmas) {
    const ProcessState* st = processor_.process(k.tgid);
    if (k.start == 0) {
      fault_report_->add_unattributed(k.tgid, comm_of(k.tgid), counts(v.c));
      continue;
    }
    extents[k.tgid][k.start] = v.end;
    // Named from the model when it still has the VMA; else from what the
    // kernel told us (the VMA was unmapped before the process ended).
    Vma vma;
    vma.start = k.start, vma.end = v.end, vma.flags = v.vm_flags, vma.ino = v.ino, vma.dev = v.dev;
    std::string name;
    if (const Vma* known = st ? st->layout.find(k.start) : nullptr; known && known->start == k.start) {
      name = maps_name(st->layout, *known);
    } else if (v.ino) {
      char b[64];
      std::snprintf(b, sizeof(b), "[file %02x:%02x %llu]", v.dev >> 20, v.dev & 0xfffff,
                    static_cast<unsigned long long>(v.ino));
      name = b;
    }
    fault_report_->add_vma(k.tgid, comm_of(k.tgid), k.start, v.end, name, vma.perms(), counts(v.c));
  }
  for (const auto& [k, n] : d.pages) {
    uint64_t addr = k.addr << 12, start = 0;
    auto& ex = extents[k.tgid];
    if (auto it = ex.upper_bound(addr); it != ex.begin() && addr < std::prev(it)->second) start = std::prev(it)->first;
    fault_report_->add_page(k.tgid, addr, start, n);
  }
  for (const auto& [k, c] : d.ips) {
    const ProcessState* st = processor_.process(k.tgid);
    const Vma* code = st && k.addr < 0x0000800000000000ull ? st->layout.find(k.addr) : nullptr;
    fault_report_->add_ip(k.tgid, k.addr, code_location(k.addr, code, st ? &st->layout : nullptr), counts(c));
  }
  for (const auto& [k, c] : d.threads) fault_report_->add_thread(k.tgid, k.tid, comm_of(k.tgid), counts(c));
}

// Loss counts are per pid, and a pid is reused once its process is gone:
// what an ended process lost moves to lost_ended_, so that a later process
// with the same pid starts from zero (the kernel deleted its count at exit,
// and a new count below the old one would otherwise go unreported).
void Session::forget_ended_losses(const DecodedRecord& d) {
  uint32_t pid = 0;
  uint64_t final_count = 0;
  if (d.type == VMAT_EV_EXIT && (d.exit.flags & VMAT_EXIT_GROUP)) {
    pid = d.hdr.pid;
    final_count = d.exit.lost;  // includes what was lost since the last check
  } else if (d.type == VMAT_EV_FORK && !(d.fork.flags & VMAT_FORK_THREAD)) {
    pid = d.fork.child_pid;  // a stale count, when the previous holder's exit record was lost
  } else {
    return;
  }
  auto it = lost_seen_.find(pid);
  uint64_t seen = it == lost_seen_.end() ? 0 : it->second;
  lost_ended_ += std::max(seen, final_count);
  if (it != lost_seen_.end()) lost_seen_.erase(it);
}

uint64_t Session::lost_total() const {
  uint64_t lost = lost_ended_;
  for (const auto& [pid, n] : lost_seen_) lost += n;
  return lost;
}

void Session::check_losses() {
  bool any = false;
  for (const auto& [pid, n] : tracer_->lost()) {
    auto it = lost_seen_.find(pid);
    any |= n > (it == lost_seen_.end() ? 0 : it->second);
  }
  if (!any) return;
  uint64_t ts = monotonic_ns();
  drain();
  // Read again: a process whose exit was among the records just drained is
  // gone from the kernel's map, and its losses were counted at its exit.
  for (const auto& [pid, n] : tracer_->lost()) {
    uint64_t seen = lost_seen_[pid];
    if (n <= seen) continue;
    auto bytes = encode_loss(make_header(VMAT_REC_LOSS, ts, pid, pid, read_comm(pid)), LossRecord{n - seen, n});
    lost_seen_[pid] = n;
    handle(bytes);
    inject_layout(pid, LayoutReason::kResync, monotonic_ns());
    // A lost exec record leaves a process stopped at its exec (procfs exec
    // layout) with nobody to continue it: the resync above read its layout.
    if (plan_.mode(Family::kExecLayout) == AttachMode::kProcfs && proc_state(pid) == 'T') ::kill(pid, SIGCONT);
  }
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
    if (WIFEXITED(st)) child_status_ = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) child_status_ = 128 + WTERMSIG(st);
  }
}

void Session::step(int timeout_ms) {
  tracer_->poll(timeout_ms);
  uint64_t now = monotonic_ns();
  periodic_due_ = now - last_periodic_ns_ >= kPeriodicNs;
  if (periodic_due_) {
    last_periodic_ns_ = now;
    check_losses();
    check_deleted(0);
  }
  if (recorder_ && now - last_flush_ns_ >= kFlushNs) {
    last_flush_ns_ = now;
    recorder_->flush();
  }
  reap();
}

void Session::drain() {
  // While producers outrun us the ring never empties: a pending signal
  // (run() stops on it) ends this drain, except the last one after the
  // producers were untraced.
  while (tracer_->drain() > 0) {
    if (g_signal.load() && !final_drain_) break;
  }
  check_deleted(0);
}

bool Session::done() const {
  if (stop_requested_) return true;
  if (child_ > 0 && !child_status_) return false;
  return tracer_->traced_count() == 0;
}

void Session::print_banner(const std::string& target) {
  if (opts_.quiet) return;
  std::string s = "vmatrace: tracing " + target + (opts_.follow ? " and its children" : "") + "; attach:";
  for (Family f : kAllFamilies) s += " " + family_name(f) + "=" + attach_mode_name(plan_.mode(f));
  char ms[48];
  std::snprintf(ms, sizeof(ms), " (loaded in %.1f ms)", attach_ns_ / 1e6);
  s += ms;
  std::fprintf(stderr, "%s\n", s.c_str());
}

void Session::print_summary() {
  if (!opts_.summary || opts_.quiet) return;
  const auto& st = processor_.stats();
  uint64_t lost = lost_total();
  std::string s = "vmatrace: " + std::to_string(st.records) + " records";
  for (const auto& [k, v] : counts_) s += ", " + std::to_string(v) + " " + k;
  s += "; lost " + std::to_string(lost);
  if (st.resyncs) s += " (" + std::to_string(st.resyncs) + " layout resyncs)";
  if (malformed_) s += "; " + std::to_string(malformed_) + " malformed records";
  std::fprintf(stderr, "%s\n", s.c_str());
  if (malloc_report_ && malloc_report_->growths())
    std::fprintf(stderr, "vmatrace: %s", malloc_report_->text(10).c_str());
}

int Session::run() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  struct sigaction sc{};
  sc.sa_handler = on_sigchld;
  sc.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  ::sigemptyset(&sc.sa_mask);
  ::sigaction(SIGCHLD, &sc, nullptr);
  if (opts_.pid) {
    attach(*opts_.pid);
    print_banner("pid " + std::to_string(*opts_.pid) + " (" + escape_text(read_comm(*opts_.pid)) + ")");
  } else {
    if (opts_.command.empty()) throw UserError("no command given after --");
    if (resolve_command(opts_.command[0]).empty()) throw UserError("command not found: " + opts_.command[0], 127);
    resolve_run_as(opts_.user);  // an unknown --user fails before the banner
    std::string cmd;
    for (const auto& a : opts_.command) cmd += (cmd.empty() ? "" : " ") + escape_text(a);
    print_banner("'" + cmd + "'");
    spawn(opts_.command);
  }
  while (!done()) {
    if (g_signal.load()) {
      stop_requested_ = true;
      break;
    }
    step(1);
  }
  if (stop_requested_) {
    // Detaching: the traced processes keep running and producing. Stop their
    // events reaching the ring buffer first, or a producer faster than us (a
    // sanitizer build, a slow disk) keeps the drain below going forever.
    check_losses();
    for (const auto* p : processor_.processes()) tracer_->untrace_pid(p->pid);
    if (child_ > 0) tracer_->untrace_pid(static_cast<uint32_t>(child_));
  }
  final_drain_ = true;
  drain();
  check_losses();
  drain();
  if (opts_.loader.fault_summary) collect_fault_summary();
  processor_.finish(printer_.get());
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
  if (recorder_) {
    recorder_->close({{"lost", std::to_string(lost_total())}});
  }
  print_summary();
  if (child_ > 0 && !child_status_) {
    // Interrupted: leave the command running, as strace does on detach.
    return 128 + (g_signal.load() ? g_signal.load() : SIGINT);
  }
  if (child_status_) return *child_status_;
  return g_signal.load() ? 128 + g_signal.load() : 0;
}

}  // namespace vmatrace
