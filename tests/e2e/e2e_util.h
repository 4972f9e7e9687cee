#pragma once
// Helpers for the end-to-end tests: they trace real processes with real BPF
// programs, so they need root and a kernel that loads them. A Session that
// cannot load throws from its constructor, and that exception fails the
// test on purpose: an e2e suite that skips when BPF is broken proves nothing.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trace/session.h"

namespace e2e {

// Paths baked in by CMake.
std::string vmatrace_bin();
std::string workload(const std::string& name);

// Whole file, or std::nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);
std::vector<std::string> split_lines(const std::string& s);

// The state letter of /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or '\0'
// when the process is gone.
char process_state(pid_t pid);
// Every thread of pid is in a job-control stop ('T'), so its address space
// cannot change until SIGCONT.
bool fully_stopped(pid_t pid);
// Waits (up to timeout) until fully_stopped(pid); returns whether it is.
bool wait_fully_stopped(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(20));
// A kB figure of /proc/PID/status ("VmSize", "VmRSS"), 0 when absent.
uint64_t status_kib(pid_t pid, const std::string& key);
// The KiB figure after " KEY " in a `top --batch` frame ("VSZ", "RSS"),
// ~0 when absent.
uint64_t top_frame_kib(const std::string& frame, const std::string& key);
// Children of pid (all its threads'), from /proc/PID/task/*/children.
std::vector<pid_t> children_of(pid_t pid);

// How many threads pid runs (/proc/PID/status), 0 when it is gone.
size_t thread_count(pid_t pid);
// The first child of parent, once it runs at least `threads` threads; 0
// when none does within timeout.
pid_t first_child_with_threads(pid_t parent, size_t threads, std::chrono::seconds timeout = std::chrono::seconds(30));

// pid's descendants (children, grandchildren, ...), from /proc.
std::vector<pid_t> descendants_of(pid_t pid);

// CLOCK_MONOTONIC ns, the clock of the tracer's timestamps.
uint64_t now_ns();

// A listing of two texts side by side, line by line, marking the lines
// that differ: for readable failures of "model == /proc" comparisons.
std::string diff_lines(const std::string& expected, const std::string& actual, const std::string& expected_name,
                       const std::string& actual_name);

// A unique path under a fresh temp dir, removed (with the dir) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A cgroup v2 hierarchy of our own (this machine mounts only v1), with one
// fresh cgroup NAME-PID in it; removed (and unmounted) at the end.
class Cgroup2 {
 public:
  explicit Cgroup2(const std::string& name);
  ~Cgroup2();
  Cgroup2(const Cgroup2&) = delete;
  Cgroup2& operator=(const Cgroup2&) = delete;
  const std::string& path() const { return path_; }
  void add(pid_t pid) const;  // moves pid into the cgroup

 private:
  TempDir mnt_;
  std::string path_;
};

// A numeric sysctl (a /proc/sys file) raised to at least `value` while this
// lives, then put back (e.g. vm.max_map_count, 65530 on a fresh machine, for
// a workload with 200k VMAs). Throws when it cannot be written.
class AtLeastSysctl {
 public:
  AtLeastSysctl(std::string path, unsigned long long value);
  ~AtLeastSysctl();
  AtLeastSysctl(const AtLeastSysctl&) = delete;
  AtLeastSysctl& operator=(const AtLeastSysctl&) = delete;

 private:
  std::string path_;
  std::optional<std::string> restore_;
};

// A stop seen by TraceHarness::run(): process `pid` is stopped, everything
// it did before is drained into the model, `ts` was taken while it was
// stopped.
struct Stop {
  pid_t pid = 0;
  uint64_t ts = 0;
  int index = 0;  // 0, 1, 2, ... over all stops of the run
};

// Drives a vmatrace::Session in-process the way `vmatrace trace` would, but
// pausing at every stop of a traced process so a test can look at the model
// and at /proc while nothing changes.
class TraceHarness {
 public:
  struct Options {
    bool events = false;           // print the event stream (to `out`)
    std::string record_path;       // record while tracing (forced overwrite)
    std::string json_events_path;  // the event stream as JSON, to this file (overrides `events`)
    std::string user;              // TraceOptions::user: run the command as this user
    bool rss = false;              // TraceOptions::rss: resident memory per VMA
    std::chrono::seconds timeout{60};
    // TraceOptions::rss_scan: how residency is scanned (with rss).
    std::string rss_scan = "auto";
  };
  TraceHarness();
  explicit TraceHarness(Options opts);
  ~TraceHarness();
  TraceHarness(const TraceHarness&) = delete;
  TraceHarness& operator=(const TraceHarness&) = delete;

  vmatrace::Session& session() { return *session_; }
  // Spawns argv traced (Session::spawn); returns its pid.
  pid_t spawn(const std::vector<std::string>& argv);
  // Starts argv untraced (as our child) and returns its pid; attach later.
  pid_t start_untraced(const std::vector<std::string>& argv);
  void attach(pid_t pid);

  // Runs the trace until it is done. For each traced process that is seen
  // fully stopped: drain, call on_stop, SIGCONT it. Throws on timeout (after
  // killing what it started).
  void run(const std::function<void(const Stop&)>& on_stop);

  // The layout the model has for pid, in /proc/PID/maps format; "" with a
  // note if unknown.
  std::string model_maps(pid_t pid) const;
  // The exit status of what spawn()/start_untraced() started, once reaped.
  std::optional<int> exit_status() const;

 private:
  void reap_untraced();

  std::FILE* out_ = nullptr;
  std::unique_ptr<vmatrace::Session> session_;
  Options opts_;
  pid_t spawned_ = -1;
  pid_t untraced_ = -1;
  std::optional<int> untraced_status_;
};

// Runs a command to completion with stdout and stderr captured.
struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};
RunResult run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(60));

// Runs argv to completion, sending SIGCONT to every descendant of it that is
// fully stopped (the checkpoints workload stops itself at each checkpoint),
// after on_stop(pid) has looked at it: nothing in it changes until then.
RunResult run_resuming_stops(const std::vector<std::string>& argv, const std::function<void(pid_t)>& on_stop = {},
                             std::chrono::seconds timeout = std::chrono::seconds(60));

// A stop from outside: pid's /proc/PID/maps, read while every thread was
// stopped, and the time it was read at.
struct OutsideStop {
  uint64_t ts = 0;
  std::string maps;
};
// SIGSTOP, wait until every thread is stopped, read /proc/PID/maps and the
// time, SIGCONT. nullopt when it ended first.
std::optional<OutsideStop> stop_from_outside(pid_t pid);
// `count` stops of pid, `gap` apart (fewer if it ended).
std::vector<OutsideStop> stops_of(pid_t pid, int count, std::chrono::milliseconds gap);

// argv with the vmatrace binary in front.
std::vector<std::string> vmatrace_argv(std::vector<std::string> args);
// A run's status and output, for failure messages.
std::string describe(const RunResult& r);
size_t count_lines(const std::string& s);

// A command started in the background with stdout/stderr going to files.
class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv);
  ~Subprocess();  // kills it (SIGKILL) if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  pid_t pid() const { return pid_; }
  // Non-blocking: the status once it exited.
  std::optional<int> poll();
  // What it wrote to stderr so far (a banner to wait for).
  std::string stderr_text() const;
  // Blocks up to timeout; throws on timeout (after SIGKILL).
  RunResult wait(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Blocks (up to 30 s) until vmatrace, run as this, says on stderr that it
  // traces (its banner); a failure of the test without it.
  void wait_for_banner() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// A Session for tests that look at its model: no banner, no summary, its
// events printed to /dev/null (open until the session is gone: its printer
// flushes when destroyed). quiet, summary and out of `to` are set here.
class QuietSession {
 public:
  explicit QuietSession(vmatrace::TraceOptions to);
  ~QuietSession();
  QuietSession(const QuietSession&) = delete;
  QuietSession& operator=(const QuietSession&) = delete;
  vmatrace::Session& operator*() { return *session_; }
  vmatrace::Session* operator->() { return session_.get(); }

 private:
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> devnull_;
  std::unique_ptr<vmatrace::Session> session_;
};

// Runs session until every one of `until_exited` has exited: each traced
// process (and each of also(), processes that may stop before their first
// record) seen fully stopped has its model compared with /proc/PID/maps
// (a test failure when they differ or the model has none), is counted in
// stops (by host pid), and is continued. Returns their exit statuses, in
// order; fails the test (throws) when they run longer than 60 s.
std::vector<int> run_comparing_stops(vmatrace::Session& session, const std::vector<Subprocess*>& until_exited,
                                     const std::function<std::vector<pid_t>()>& also, std::map<pid_t, int>& stops);

}  // namespace e2e
