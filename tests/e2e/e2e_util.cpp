#include "e2e_util.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/proc_maps.h"

extern char** environ;

namespace e2e {
namespace {
// Under `sudo ./scripts/test.sh` vmatrace would run every traced workload as
// the invoking user (SUDO_UID), which cannot write the tests' root-owned
// temp dirs. The tests that check that behaviour set SUDO_UID themselves.
[[maybe_unused]] const bool sudo_env_cleared = [] {
  for (const char* v : {"SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"}) ::unsetenv(v);
  return true;
}();
// Source lines kept across runs (sym/line_cache.h) would let one test's
// lines (found through --debug-dir, a debuginfod server) answer another's,
// and the user's cache change what the tests see: off, except where a test
// gives the vmatrace it runs a directory of its own.
[[maybe_unused]] const bool line_cache_off = [] { return ::setenv("VMATRACE_CACHE_DIR", "off", 1) == 0; }();
}  // namespace
namespace {

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

std::string vmatrace_bin() { return VMATRACE_BIN; }
std::string workload(const std::string& name) { return std::string(VMATRACE_WORKLOADS) + "/" + name; }

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::string::size_type pos = 0;
  while (pos < s.size()) {
    auto nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

char process_state(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return '\0';
  // The comm field may hold spaces and parentheses: the state follows the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return '\0';
  return (*stat)[close + 2];
}

bool fully_stopped(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  bool any = false, all = true;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto stat = read_file(dir + "/" + e->d_name + "/stat");
    if (!stat) continue;  // thread just exited
    auto close = stat->rfind(')');
    if (close == std::string::npos || close + 2 >= stat->size()) continue;
    any = true;
    if ((*stat)[close + 2] != 'T') all = false;
  }
  ::closedir(d);
  return any && all;
}

bool wait_fully_stopped(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!fully_stopped(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return fully_stopped(pid);
}

uint64_t status_kib(pid_t pid, const std::string& key) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status").value_or("");
  auto at = status.find(key + ":");
  return at == std::string::npos ? 0 : std::strtoull(status.c_str() + at + key.size() + 1, nullptr, 10);
}

uint64_t top_frame_kib(const std::string& frame, const std::string& key) {
  auto at = frame.find(" " + key + " ");
  return at == std::string::npos ? ~uint64_t{0} : std::strtoull(frame.c_str() + at + key.size() + 2, nullptr, 10);
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto kids = read_file(dir + "/" + e->d_name + "/children");
    if (!kids) continue;
    std::istringstream ss(*kids);
    pid_t c;
    while (ss >> c) out.push_back(c);
  }
  ::closedir(d);
  return out;
}

size_t thread_count(pid_t pid) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status").value_or("");
  auto at = status.find("Threads:");
  return at == std::string::npos ? 0 : std::stoul(status.substr(at + 8));
}

pid_t first_child_with_threads(pid_t parent, size_t threads, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pid_t child = 0;
  while (!child || thread_count(child) < threads) {
    if (std::chrono::steady_clock::now() >= deadline) return 0;
    auto kids = children_of(parent);
    if (!kids.empty()) child = kids[0];
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return child;
}

uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

std::string diff_lines(const std::string& expected, const std::string& actual, const std::string& expected_name,
                       const std::string& actual_name) {
  // Both sides are sorted by address, so a merge by line gives a readable
  // unified-diff-like listing without a real LCS.
  auto a = split_lines(expected), b = split_lines(actual);
  std::ostringstream out;
  out << "--- " << expected_name << "\n+++ " << actual_name << "\n";
  std::set<std::string> in_a(a.begin(), a.end()), in_b(b.begin(), b.end());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      out << "  " << a[i] << "\n";
      i++, j++;
    } else if (i < a.size() && !in_b.count(a[i])) {
      out << "- " << a[i++] << "\n";
    } else if (j < b.size() && !in_a.count(b[j])) {
      out << "+ " << b[j++] << "\n";
    } else if (i < a.size()) {
      out << "- " << a[i++] << "\n";
    } else {
      out << "+ " << b[j++] << "\n";
    }
  }
  return out.str();
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vmatrace-e2e-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- TraceHarness ----------------------------------------------------------

TraceHarness::TraceHarness() : TraceHarness(Options{}) {}

TraceHarness::TraceHarness(Options opts) : opts_(std::move(opts)) {
  const std::string out_path = opts_.json_events_path.empty() ? "/dev/null" : opts_.json_events_path;
  out_ = std::fopen(out_path.c_str(), "w");
  if (!out_) throw std::runtime_error("cannot open " + out_path);
  vmatrace::TraceOptions to;
  to.quiet = true;
  to.summary = false;
  to.out = out_;
  to.print.events = opts_.events || !opts_.json_events_path.empty();
  if (!opts_.json_events_path.empty()) to.print.format = vmatrace::OutputFormat::kJson;
  to.record_path = opts_.record_path;
  to.user = opts_.user;
  to.rss = opts_.rss;
  to.rss_scan = opts_.rss_scan;
  to.force = true;
  // Loads the BPF programs: throws (and so fails the test) when it cannot.
  session_ = std::make_unique<vmatrace::Session>(std::move(to));
}

TraceHarness::~TraceHarness() {
  // Whatever a failed test left behind must not linger stopped.
  if (session_) {
    for (const auto* p : session_->processor().processes())
      if (!p->exited && p->pid > 0) ::kill(static_cast<pid_t>(p->pid), SIGKILL);
  }
  for (pid_t p : {spawned_, untraced_}) {
    if (p <= 0) continue;
    if (p == spawned_ && session_ && session_->child_status()) continue;
    if (p == untraced_ && untraced_status_) continue;
    ::kill(p, SIGKILL);
    int st;
    ::waitpid(p, &st, 0);
  }
  session_.reset();
  if (out_) std::fclose(out_);
}

pid_t TraceHarness::spawn(const std::vector<std::string>& argv) {
  spawned_ = session_->spawn(argv);
  return spawned_;
}

pid_t TraceHarness::start_untraced(const std::vector<std::string>& argv) {
  auto cargv = c_argv(argv);
  pid_t pid;
  int err = ::posix_spawn(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ);
  if (err) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(err));
  untraced_ = pid;
  return pid;
}

void TraceHarness::attach(pid_t pid) { session_->attach(pid); }

void TraceHarness::reap_untraced() {
  if (untraced_ <= 0 || untraced_status_) return;
  int st;
  if (::waitpid(untraced_, &st, WNOHANG) == untraced_) untraced_status_ = decode_status(st);
}

std::optional<int> TraceHarness::exit_status() const {
  if (untraced_ > 0) return untraced_status_;
  return session_->child_status();
}

void TraceHarness::run(const std::function<void(const Stop&)>& on_stop) {
  auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
  int index = 0;
  while (!session_->done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::string stuck;
      for (const auto* p : session_->processor().processes())
        if (!p->exited)
          stuck += " " + std::to_string(p->pid) + "(" + p->comm + ", state " +
                   std::string(1, process_state(static_cast<pid_t>(p->pid))) + ")";
      throw std::runtime_error("trace did not end within " + std::to_string(opts_.timeout.count()) +
                               " s; still traced:" + stuck);
    }
    session_->step(1);
    reap_untraced();
    std::vector<pid_t> pids;
    for (const auto* p : session_->processor().processes())
      if (!p->exited) pids.push_back(static_cast<pid_t>(p->pid));
    for (pid_t p : {spawned_, untraced_})
      if (p > 0 && std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
    for (pid_t pid : pids) {
      if (!fully_stopped(pid)) continue;
      // Everything the process did before stopping is in the ring buffer.
      session_->drain();
      Stop s{pid, now_ns(), index++};
      try {
        on_stop(s);
      } catch (...) {
        ::kill(pid, SIGCONT);
        throw;
      }
      ::kill(pid, SIGCONT);
    }
  }
  session_->drain();
  if (untraced_ > 0 && !untraced_status_) {
    int st;
    if (::waitpid(untraced_, &st, 0) == untraced_) untraced_status_ = decode_status(st);
  }
}

std::string TraceHarness::model_maps(pid_t pid) const {
  const auto* p = session_->processor().process(static_cast<uint32_t>(pid));
  if (!p) return "(process " + std::to_string(pid) + " unknown to the model)\n";
  if (!p->seeded) return "(layout of " + std::to_string(pid) + " not known to the model)\n";
  return format_proc_maps(p->layout);
}

// ---- subprocesses ------------------------------------------------------------

Subprocess::Subprocess(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string out = dir_.file("stdout"), err = dir_.file("stderr");
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto cargv = c_argv(argv);
  int e = ::posix_spawnp(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e) throw std::runtime_error("posix_spawn " + join(argv) + ": " + std::strerror(e));
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

std::optional<int> Subprocess::poll() {
  if (!status_) {
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = decode_status(st);
  }
  return status_;
}

std::string Subprocess::stderr_text() const { return read_file(dir_.file("stderr")).value_or(""); }

RunResult Subprocess::wait(std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!poll()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
      status_ = decode_status(st);
      throw std::runtime_error("command did not finish within " + std::to_string(timeout.count()) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  RunResult r;
  r.status = *status_;
  r.out = read_file(dir_.file("stdout")).value_or("");
  r.err = read_file(dir_.file("stderr")).value_or("");
  return r;
}

void Subprocess::wait_for_banner() const {
  // A liveness bound, not a timing: in the 6.1 VM (TCG) beside the ASan
  // suite, loading the programs and a 256 MiB ring took over 30 s once.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (stderr_text().find("tracing") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no banner from vmatrace: " << stderr_text();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

RunResult run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  Subprocess p(argv);
  return p.wait(timeout);
}

std::vector<pid_t> descendants_of(pid_t pid) {
  std::vector<pid_t> todo = children_of(pid), all;
  while (!todo.empty()) {
    pid_t q = todo.back();
    todo.pop_back();
    all.push_back(q);
    for (pid_t c : children_of(q)) todo.push_back(c);
  }
  return all;
}

std::optional<OutsideStop> stop_from_outside(pid_t pid) {
  if (::kill(pid, SIGSTOP)) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fully_stopped(pid)) {
    char st = process_state(pid);
    if (st == 0 || st == 'Z' || std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGCONT);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  OutsideStop s;
  auto maps = read_file("/proc/" + std::to_string(pid) + "/maps");
  s.ts = now_ns();
  ::kill(pid, SIGCONT);
  if (!maps) return std::nullopt;
  s.maps = *maps;
  return s;
}

std::vector<OutsideStop> stops_of(pid_t pid, int count, std::chrono::milliseconds gap) {
  std::vector<OutsideStop> out;
  for (int i = 0; i < count; i++) {
    std::this_thread::sleep_for(gap);
    if (auto s = stop_from_outside(pid)) out.push_back(std::move(*s));
  }
  return out;
}

std::vector<std::string> vmatrace_argv(std::vector<std::string> args) {
  args.insert(args.begin(), vmatrace_bin());
  return args;
}

std::string describe(const RunResult& r) {
  return "exit status " + std::to_string(r.status) + "\n--- stdout (first 2000 bytes) ---\n" + r.out.substr(0, 2000) +
         "\n--- stderr ---\n" + r.err;
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

RunResult run_resuming_stops(const std::vector<std::string>& argv, const std::function<void(pid_t)>& on_stop,
                             std::chrono::seconds timeout) {
  Subprocess p(argv);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!p.poll()) {
    if (std::chrono::steady_clock::now() > deadline) break;  // wait() below kills it and throws
    for (pid_t q : descendants_of(p.pid())) {
      if (!fully_stopped(q)) continue;
      if (on_stop) on_stop(q);
      ::kill(q, SIGCONT);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return p.wait(std::chrono::seconds(1));
}

AtLeastSysctl::AtLeastSysctl(std::string path, unsigned long long value) : path_(std::move(path)) {
  const auto now = read_file(path_);
  if (!now) throw std::runtime_error("cannot read " + path_);
  if (std::strtoull(now->c_str(), nullptr, 10) >= value) return;
  write_file(path_, std::to_string(value));
  restore_ = *now;
}

AtLeastSysctl::~AtLeastSysctl() {
  if (!restore_) return;
  try {
    write_file(path_, *restore_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "e2e: could not restore %s: %s\n", path_.c_str(), e.what());
  }
}

Cgroup2::Cgroup2(const std::string& name) {
  if (::mount("none", mnt_.path().c_str(), "cgroup2", 0, nullptr) != 0)
    throw std::runtime_error(std::string("mount -t cgroup2: ") + std::strerror(errno));
  path_ = mnt_.path() + "/" + name + "-" + std::to_string(::getpid());
  if (::mkdir(path_.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::runtime_error("mkdir " + path_ + ": " + std::strerror(errno));
}

Cgroup2::~Cgroup2() {
  ::rmdir(path_.c_str());
  ::umount2(mnt_.path().c_str(), MNT_DETACH);
}

void Cgroup2::add(pid_t pid) const { write_file(path_ + "/cgroup.procs", std::to_string(pid) + "\n"); }

QuietSession::QuietSession(vmatrace::TraceOptions to) : devnull_(std::fopen("/dev/null", "w"), std::fclose) {
  if (!devnull_) throw std::runtime_error(std::string("/dev/null: ") + std::strerror(errno));
  to.quiet = true;
  to.summary = false;
  to.out = devnull_.get();
  session_ = std::make_unique<vmatrace::Session>(std::move(to));
}

QuietSession::~QuietSession() { session_.reset(); }  // before /dev/null closes

std::vector<int> run_comparing_stops(vmatrace::Session& session, const std::vector<Subprocess*>& until_exited,
                                     const std::function<std::vector<pid_t>()>& also, std::map<pid_t, int>& stops) {
  std::vector<std::optional<int>> statuses(until_exited.size());
  auto finished = [&] {
    bool all = true;
    for (size_t i = 0; i < until_exited.size(); i++) {
      if (!statuses[i]) statuses[i] = until_exited[i]->poll();
      all = all && statuses[i];
    }
    return all;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!finished()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "the workloads did not finish";
      throw std::runtime_error("the workloads did not finish in 60 s");
    }
    session.step(1);
    std::vector<pid_t> pids;
    for (const auto* p : session.processor().processes())
      if (!p->exited) pids.push_back(static_cast<pid_t>(p->pid));
    for (pid_t p : also())
      if (std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
    for (pid_t pid : pids) {
      if (!fully_stopped(pid)) continue;
      session.drain();
      stops[pid]++;
      auto kernel = read_file("/proc/" + std::to_string(pid) + "/maps");
      const auto* p = session.processor().process(static_cast<uint32_t>(pid));
      if (kernel && p && p->seeded)
        EXPECT_EQ(vmatrace::format_proc_maps(p->layout), *kernel) << "pid " << pid << " at a stop";
      else
        ADD_FAILURE() << "pid " << pid << " stopped but its layout is not known to the model";
      ::kill(pid, SIGCONT);
    }
  }
  session.drain();
  std::vector<int> out;
  for (const auto& st : statuses) out.push_back(*st);
  return out;
}

}  // namespace e2e
