// The vmatrace binary as a user runs it: exit statuses, one-line errors,
// JSON output, and live output == replay of the recording made in the same
// run, including layouts at checkpoints against /proc/PID/maps.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

using e2e::RunResult;
using e2e::TempDir;

namespace {

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }
using e2e::count_lines;
using e2e::describe;

// A user-facing error: non-zero exit, exactly one newline-terminated line on
// stderr (no banner, no summary, no usage dump).
void expect_one_line_error(const RunResult& r, const std::string& what) {
  EXPECT_NE(r.status, 0) << what << "\n" << describe(r);
  EXPECT_EQ(count_lines(r.err), 1u) << what << ": want exactly one line on stderr\n" << describe(r);
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << what << "\n" << describe(r);
}

// The benchmark workloads print "elapsed_ns=N" on stdout, which they would
// share with vmatrace's own output (and writes of the two interleave
// mid-line). Run them through sh with stdout sent to /dev/null instead: the
// exec is traced like the rest.
std::vector<std::string> quiet(const std::string& name, std::vector<std::string> args) {
  std::vector<std::string> v = {"sh", "-c", "exec \"$0\" \"$@\" >/dev/null", e2e::workload(name)};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- a minimal strict JSON checker (RFC 8259 grammar, no extensions) --------

class JsonChecker {
 public:
  explicit JsonChecker(const std::string& s) : s_(s) {}
  // Whole input is exactly one object.
  bool object_only() {
    ws();
    if (peek() != '{' || !value()) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }
  bool string() {
    if (peek() != '"') return false;
    i_++;
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c == '\\') {
        char e = peek();
        i_++;
        if (e == 'u') {
          for (int k = 0; k < 4; k++, i_++)
            if (!std::isxdigit(static_cast<unsigned char>(peek()))) return false;
        } else if (std::string("\"\\/bfnrt").find(e) == std::string::npos || e == '\0') {
          return false;
        }
      }
    }
    return false;
  }
  bool number() {
    size_t start = i_;
    if (peek() == '-') i_++;
    if (peek() == '0')
      i_++;
    else if (peek() >= '1' && peek() <= '9')
      while (std::isdigit(static_cast<unsigned char>(peek()))) i_++;
    else
      return false;
    if (peek() == '.') {
      i_++;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) i_++;
    }
    if (peek() == 'e' || peek() == 'E') {
      i_++;
      if (peek() == '+' || peek() == '-') i_++;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) i_++;
    }
    return i_ > start;
  }
  bool value() {
    if (++depth_ > 64) return false;
    ws();
    bool ok;
    char c = peek();
    if (c == '{') {
      i_++;
      ws();
      if (peek() == '}') {
        i_++;
        ok = true;
      } else {
        ok = false;
        while (true) {
          ws();
          if (!string()) break;
          ws();
          if (peek() != ':') break;
          i_++;
          if (!value()) break;
          ws();
          if (peek() == ',') {
            i_++;
            continue;
          }
          if (peek() == '}') {
            i_++;
            ok = true;
          }
          break;
        }
      }
    } else if (c == '[') {
      i_++;
      ws();
      if (peek() == ']') {
        i_++;
        ok = true;
      } else {
        ok = false;
        while (true) {
          if (!value()) break;
          ws();
          if (peek() == ',') {
            i_++;
            continue;
          }
          if (peek() == ']') {
            i_++;
            ok = true;
          }
          break;
        }
      }
    } else if (c == '"') {
      ok = string();
    } else if (c == 't') {
      ok = lit("true");
    } else if (c == 'f') {
      ok = lit("false");
    } else if (c == 'n') {
      ok = lit("null");
    } else {
      ok = number();
    }
    depth_--;
    return ok;
  }

  const std::string& s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// A pid that does not exist now.
pid_t absent_pid() {
  for (pid_t p = 999999; p > 100000; p -= 7)
    if (::kill(p, 0) != 0 && errno == ESRCH) return p;
  return 999999;
}

// ---- exit statuses and one-line errors ----------------------------------------

TEST(Cli, ExitsWithTheCommandsStatus) {
  auto r = e2e::run_command(vm({"trace", "--", "sh", "-c", "exit 7"}));
  EXPECT_EQ(r.status, 7) << describe(r);
}

TEST(Cli, CommandKilledBySigtermGives143) {
  auto r = e2e::run_command(vm({"trace", "--", "sh", "-c", "kill -TERM $$"}));
  EXPECT_EQ(r.status, 143) << describe(r);
}

TEST(Cli, CommandNotFound) {
  auto r = e2e::run_command(vm({"trace", "--", "/nonexistent/cmd"}));
  EXPECT_EQ(r.status, 127) << describe(r);
  expect_one_line_error(r, "trace -- /nonexistent/cmd");
  EXPECT_NE(r.err.find("/nonexistent/cmd"), std::string::npos) << describe(r);
}

TEST(Cli, NoSuchPid) {
  std::string pid = std::to_string(absent_pid());
  auto r = e2e::run_command(vm({"trace", "-p", pid}));
  expect_one_line_error(r, "trace -p " + pid);
  EXPECT_NE(r.err.find(pid), std::string::npos) << "the message should name the pid\n" << describe(r);
}

TEST(Cli, UnknownOption) {
  auto r = e2e::run_command(vm({"trace", "--no-such-option", "--", "true"}));
  expect_one_line_error(r, "trace --no-such-option");
}

TEST(Cli, CheckpointSpacingThatIsNotANumberIsOneLineError) {
  e2e::TempDir dir;
  ::setenv("VMATRACE_CHECKPOINT_BYTES", "64k", 1);
  auto r = e2e::run_command(vm({"record", "-o", dir.file("r.vmat"), "--", "true"}));
  ::unsetenv("VMATRACE_CHECKPOINT_BYTES");
  expect_one_line_error(r, "VMATRACE_CHECKPOINT_BYTES=64k record");
  EXPECT_NE(r.err.find("VMATRACE_CHECKPOINT_BYTES=64k is not a number of bytes"), std::string::npos) << describe(r);
}

// ---- output formats -------------------------------------------------------------

TEST(Cli, JsonLinesAreObjectsAndShowTheKnownMmap) {
  // storm 1 7: one mmap of 7 pages, read-write, private anonymous.
  auto r = e2e::run_command(vm(concat({"trace", "--json", "--"}, quiet("storm", {"1", "7"}))));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto lines = e2e::split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << describe(r);
  int known = 0;
  for (const auto& l : lines) {
    JsonChecker j(l);
    EXPECT_TRUE(!l.empty() && l.front() == '{' && l.back() == '}' && j.object_only()) << "not a JSON object: " << l;
    for (const char* key : {"\"ts\":", "\"pid\":", "\"tid\":", "\"comm\":", "\"event\":"})
      EXPECT_NE(l.find(key), std::string::npos) << "no " << key << " in " << l;
    if (l.find("\"event\":\"mmap\"") != std::string::npos && l.find("\"len\":28672,") != std::string::npos) {
      known++;
      EXPECT_NE(l.find("\"prot\":\"PROT_READ|PROT_WRITE\""), std::string::npos) << l;
      EXPECT_NE(l.find("\"flags\":\"MAP_PRIVATE|MAP_ANONYMOUS\""), std::string::npos) << l;
      EXPECT_NE(l.find("\"comm\":\"storm\""), std::string::npos) << l;
    }
  }
  EXPECT_EQ(known, 1) << "the 7-page mmap of storm, once\n" << describe(r);
}

// --bpf-stats: the kernel's own count of each program's runs agrees with
// what the workload did. storm N does N mmaps, N munmaps and N first-touch
// faults; the programs also run for every other process on the machine, so
// the counts are lower bounds.
TEST(Cli, BpfStatsCountTheWorkloadsSyscallsAndFaults) {
  constexpr uint64_t kIters = 2000;
  auto r =
      e2e::run_command(vm(concat({"trace", "--json", "--bpf-stats", "--"}, quiet("storm", {std::to_string(kIters)}))));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto lines = e2e::split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << describe(r);
  const std::string& last = lines.back();
  ASSERT_EQ(last.rfind("{\"event\":\"bpf_stats\",\"programs\":[", 0), 0u) << "the last line is the stats\n"
                                                                          << describe(r);
  JsonChecker j(last);
  EXPECT_TRUE(j.object_only()) << last;
  std::regex prog_re(R"re(\{"name":"([a-z0-9_]+)","run_cnt":([0-9]+),"run_time_ns":([0-9]+),"ns_per_run":)re");
  std::map<std::string, std::pair<uint64_t, uint64_t>> progs;
  for (auto it = std::sregex_iterator(last.begin(), last.end(), prog_re); it != std::sregex_iterator(); ++it)
    progs[(*it)[1]] = {std::stoull((*it)[2]), std::stoull((*it)[3])};
  ASSERT_FALSE(progs.empty()) << last;
  uint64_t exits = 0, faults = 0, mmap_entries = 0;
  for (const auto& [name, st] : progs) {
    const auto& [runs, ns] = st;
    if (runs) {
      EXPECT_GT(ns, 0u) << name << " ran " << runs << " times in no time";
    }
    const bool exit_prog = name == "syscalls_exit_tp" || name == "syscalls_exit_raw" || name == "syscalls_kretprobe" ||
                           name.ends_with("_fexit");
    if (exit_prog) exits += runs;
    if (name.rfind("fault_", 0) == 0 && name != "fault_major_perf") faults = std::max(faults, runs);
    if (name.rfind("mmap_", 0) == 0 || name == "syscalls_enter_raw") mmap_entries += runs;
  }
  EXPECT_GE(exits, 2 * kIters) << "every mmap and munmap of the storm ends in an exit program\n" << last;
  EXPECT_GE(mmap_entries, kIters) << "every mmap of the storm enters\n" << last;
  EXPECT_GE(faults, kIters) << "every iteration's first touch faults\n" << last;
  EXPECT_NE(r.err.find("vmatrace: BPF programs (--bpf-stats"), std::string::npos) << "the table with the summary\n"
                                                                                  << describe(r);
}

namespace {

// Each program's run count from the last line of `trace --json --bpf-stats`.
std::map<std::string, uint64_t> bpf_stats_runs(const std::string& last) {
  std::map<std::string, uint64_t> runs;
  std::regex prog_re(R"re(\{"name":"([a-z0-9_]+)","run_cnt":([0-9]+),)re");
  for (auto it = std::sregex_iterator(last.begin(), last.end(), prog_re); it != std::sregex_iterator(); ++it)
    runs[(*it)[1]] = std::stoull((*it)[2]);
  return runs;
}

}  // namespace

// What a process that is not traced pays: vmatrace traces a sleeping
// process while another, untraced, faults kPages fresh pages. The fault
// tracepoint runs in every process (it counts them: the faults happened
// during the trace), but the perf programs that tell major from minor must
// not: their events are on the traced threads. Opened on every CPU, as
// before, they ran once per fault of every process on the machine.
TEST(Cli, FaultPerfProgramsRunOnlyInTracedProcesses) {
  constexpr uint64_t kPages = 20000;
  e2e::Subprocess target({"sleep", "120"});
  e2e::Subprocess tracer(vm({"trace", "--json", "--bpf-stats", "-p", std::to_string(target.pid())}));
  tracer.wait_for_banner();
  auto busy = e2e::run_command({e2e::workload("faultstorm"), std::to_string(kPages)});
  ASSERT_EQ(busy.status, 0) << describe(busy);
  ASSERT_EQ(::kill(tracer.pid(), SIGINT), 0);
  auto r = tracer.wait();
  ASSERT_EQ(r.status, 128 + SIGINT) << describe(r);  // detached on SIGINT
  auto lines = e2e::split_lines(r.out);
  ASSERT_FALSE(lines.empty()) << describe(r);
  const auto runs = bpf_stats_runs(lines.back());
  ASSERT_TRUE(runs.count("fault_user_raw") && runs.count("fault_minor_perf") && runs.count("fault_major_perf"))
      << "the fault programs are loaded\n"
      << lines.back();
  EXPECT_GE(runs.at("fault_user_raw"), kPages) << "the untraced faults happened while tracing\n" << lines.back();
  // The sleeping target faults at most a few pages (none, usually).
  EXPECT_LT(runs.at("fault_minor_perf") + runs.at("fault_major_perf"), 100u)
      << "the perf programs ran for the untraced process's faults\n"
      << lines.back();
}

TEST(Cli, MapsAtEndLooksLikeProcMaps) {
  auto r = e2e::run_command(vm(concat({"trace", "--maps", "--"}, quiet("storm", {"10"}))));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto lines = e2e::split_lines(r.out);
  auto hdr =
      std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("# maps of ", 0) == 0; });
  ASSERT_NE(hdr, lines.end()) << "no '# maps of' block\n" << describe(r);
  EXPECT_TRUE(std::regex_match(*hdr, std::regex(R"(# maps of \d+ \(storm\))"))) << *hdr;
  // /proc/PID/maps: start-end perms offset dev inode, then the name padded to column 74.
  std::regex line(
      R"([0-9a-f]{8,16}-[0-9a-f]{8,16} [r-][w-][x-][ps] [0-9a-f]{8} [0-9a-f]{2,3}:[0-9a-f]{2,5} \d+ *( .*)?)");
  bool exe = false, stack = false, vdso = false, libc = false;
  int n = 0;
  for (auto it = hdr + 1; it != lines.end() && it->rfind("# ", 0) != 0; ++it, ++n) {
    EXPECT_TRUE(std::regex_match(*it, line)) << "not a maps line: '" << *it << "'";
    exe |= it->ends_with("/workloads/storm");
    stack |= it->ends_with(" [stack]");
    vdso |= it->ends_with(" [vdso]");
    libc |= it->find("/libc.so.6") != std::string::npos;
  }
  EXPECT_GT(n, 10);
  EXPECT_TRUE(exe && stack && vdso && libc) << "missing the executable, [stack], [vdso] or libc\n" << describe(r);
}

// ---- live output == replay ---------------------------------------------------------

struct ReplayCase {
  const char* name;
  std::vector<std::string> flags;  // given to trace and to replay
};

class LiveEqualsReplay : public ::testing::TestWithParam<ReplayCase> {};

TEST_P(LiveEqualsReplay, ByteForByte) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  std::vector<std::string> trace = {"trace", "-o", rec};
  trace.insert(trace.end(), GetParam().flags.begin(), GetParam().flags.end());
  trace.push_back("--");
  trace = concat(trace, quiet("storm", {"1000"}));
  auto live = e2e::run_command(vm(trace));
  ASSERT_EQ(live.status, 0) << describe(live);
  std::vector<std::string> replay = {"replay", rec};
  replay.insert(replay.end(), GetParam().flags.begin(), GetParam().flags.end());
  auto rep = e2e::run_command(vm(replay));
  ASSERT_EQ(rep.status, 0) << describe(rep);
  EXPECT_GT(count_lines(live.out), 3000u) << "1000 x (mmap, fault, munmap) at least";
  EXPECT_EQ(live.out, rep.out) << e2e::diff_lines(live.out, rep.out, "live", "replay");
}

INSTANTIATE_TEST_SUITE_P(Cli, LiveEqualsReplay,
                         ::testing::Values(ReplayCase{"text", {}}, ReplayCase{"json", {"--json"}},
                                           ReplayCase{"maps", {"--maps"}}),
                         [](const ::testing::TestParamInfo<ReplayCase>& i) { return std::string(i.param.name); });

TEST(Cli, RecordThenReplayAndInfo) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  auto r = e2e::run_command(vm({"record", "-o", rec, "--", e2e::workload("storm"), "1000"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  // record prints no events: stdout holds only the workload's own line.
  EXPECT_TRUE(std::regex_match(r.out, std::regex("elapsed_ns=\\d+\n"))) << describe(r);
  auto rep = e2e::run_command(vm({"replay", rec}));
  ASSERT_EQ(rep.status, 0) << describe(rep);
  EXPECT_GT(count_lines(rep.out), 3000u);
  EXPECT_NE(rep.out.find(" storm mmap(NULL, 4096 [4.0 KiB], PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1,"),
            std::string::npos)
      << describe(rep);
  // A recording refuses to be overwritten without --force.
  auto again = e2e::run_command(vm({"record", "-o", rec, "--", "true"}));
  expect_one_line_error(again, "record over an existing file");

  auto info = e2e::run_command(vm({"info", rec}));
  ASSERT_EQ(info.status, 0) << describe(info);
  EXPECT_NE(info.out.find(e2e::workload("storm") + " 1000"), std::string::npos) << "info names the command\n"
                                                                                << describe(info);
  auto ij = e2e::run_command(vm({"info", "--json", rec}));
  ASSERT_EQ(ij.status, 0) << describe(ij);
  auto l = e2e::split_lines(ij.out);
  ASSERT_EQ(l.size(), 1u) << describe(ij);
  EXPECT_TRUE(JsonChecker(l[0]).object_only()) << l[0];
}

// ---- replay --maps --at T against /proc at checkpoints ----------------------------

struct SavedStop {
  pid_t pid;
  uint64_t ts;
  std::string maps;
};

// Runs `vmatrace trace -o rec [flags] -- checkpoints`, saving /proc/PID/maps
// of every descendant that stops (the workload and its forked child) with
// the time, then resuming it.
std::vector<SavedStop> trace_checkpoints(const std::string& rec, const std::vector<std::string>& flags,
                                         RunResult& result) {
  std::vector<std::string> argv = {"trace", "-o", rec};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"--", e2e::workload("checkpoints")});
  std::vector<SavedStop> stops;
  result = e2e::run_resuming_stops(vm(argv), [&](pid_t q) {
    auto maps = e2e::read_file("/proc/" + std::to_string(q) + "/maps");
    uint64_t ts = e2e::now_ns();
    if (maps) stops.push_back({q, ts, *maps});
  });
  return stops;
}

TEST(Cli, ReplayMapsAtCheckpointsEqualsProc) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  RunResult live;
  auto stops = trace_checkpoints(rec, {}, live);
  ASSERT_EQ(live.status, 0) << describe(live);
  // 21 before the mlock (6), pkey (2) and shm (5) steps.
  EXPECT_EQ(stops.size(), 34u) << "checkpoints of tests/workloads/checkpoints.c (parent and forked child)";

  // The same run, replayed: the event text is what was printed live.
  auto rep = e2e::run_command(vm({"replay", rec}));
  EXPECT_EQ(rep.status, 0) << describe(rep);
  EXPECT_EQ(live.out, rep.out) << e2e::diff_lines(live.out, rep.out, "live", "replay");

  int mismatches = 0;
  for (size_t i = 0; i < stops.size(); i++) {
    const auto& s = stops[i];
    std::string pid = std::to_string(s.pid), at = std::to_string(s.ts);
    auto r = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", pid}));
    EXPECT_EQ(r.status, 0) << "checkpoint " << i << ": replay --maps --at " << at << " --pid " << pid << ": " << r.err;
    auto nl = r.out.find('\n');
    std::string header = r.out.substr(0, nl);
    EXPECT_EQ(header.rfind("# maps of " + pid + " (", 0), 0u) << "checkpoint " << i << ": header '" << header << "'";
    std::string body = nl == std::string::npos ? "" : r.out.substr(nl + 1);
    if (body != s.maps) {
      mismatches++;
      ADD_FAILURE() << "checkpoint " << i << " (pid " << pid << ", ts " << at
                    << "): replay --maps --at differs from /proc\n"
                    << e2e::diff_lines(s.maps, body, "/proc/" + pid + "/maps", "vmatrace replay --maps --at " + at);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// A process that does nothing while attached to leaves no record after the
// attach; replay --at of a moment it was traced must still give its layout
// (the trailer's end_ts), not "after the end of the recording" (found by
// real.redis.attach: redis under a read load makes no memory syscalls).
TEST(Cli, ReplayMapsAtAQuietMomentBeforeTheRecordingEnds) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  e2e::Subprocess quiet({"sleep", "60"});
  e2e::Subprocess tracer(vm({"record", "-o", rec, "-p", std::to_string(quiet.pid())}));
  // Loading takes about a second here: well attached after four.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto maps = e2e::read_file("/proc/" + std::to_string(quiet.pid()) + "/maps");
  std::string at = std::to_string(e2e::now_ns());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::kill(tracer.pid(), SIGINT), 0);
  auto t = tracer.wait();
  ASSERT_EQ(t.status, 128 + SIGINT) << describe(t);  // detached on SIGINT
  ASSERT_TRUE(maps);
  auto r = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", std::to_string(quiet.pid())}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto nl = r.out.find('\n');
  ASSERT_NE(nl, std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(nl + 1), *maps) << e2e::diff_lines(*maps, r.out.substr(nl + 1), "/proc", "replay --maps --at");
}

TEST(Cli, ReplayJsonOfCheckpointsEqualsLive) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  RunResult live;
  trace_checkpoints(rec, {"--json", "--maps"}, live);
  ASSERT_EQ(live.status, 0) << describe(live);
  auto rep = e2e::run_command(vm({"replay", "--json", "--maps", rec}));
  EXPECT_EQ(rep.status, 0) << describe(rep);
  EXPECT_EQ(live.out, rep.out) << e2e::diff_lines(live.out, rep.out, "live", "replay");
  for (const auto& l : e2e::split_lines(live.out)) EXPECT_TRUE(JsonChecker(l).object_only()) << l;
}

// ---- replay of bad input -------------------------------------------------------------

class BadReplay : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    rec_ = dir_->file("storm.vmat");
    // Big enough for several 1 MiB chunks (six records per iteration with the
    // vma family), so half a file holds whole chunks.
    auto r = e2e::run_command(vm(concat({"record", "-o", rec_, "--"}, quiet("storm", {"15000"}))));
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static std::string rec_;
};
TempDir* BadReplay::dir_ = nullptr;
std::string BadReplay::rec_;

TEST_F(BadReplay, NotARecording) {
  std::string f = dir_->file("text.txt");
  e2e::write_file(f, "this is not a vmatrace recording\n");
  expect_one_line_error(e2e::run_command(vm({"replay", f})), "replay of a text file");
}

TEST_F(BadReplay, EmptyFile) {
  std::string f = dir_->file("empty.vmat");
  e2e::write_file(f, "");
  expect_one_line_error(e2e::run_command(vm({"replay", f})), "replay of an empty file");
}

TEST_F(BadReplay, MissingFile) {
  expect_one_line_error(e2e::run_command(vm({"replay", dir_->file("nope.vmat")})), "replay of a missing file");
}

TEST_F(BadReplay, TruncatedReplaysAPrefixAndExits3) {
  auto full = e2e::run_command(vm({"replay", rec_}));
  ASSERT_EQ(full.status, 0) << describe(full);
  auto data = e2e::read_file(rec_).value();
  std::string half = dir_->file("half.vmat");
  e2e::write_file(half, data.substr(0, data.size() / 2));
  auto r = e2e::run_command(vm({"replay", half}));
  EXPECT_EQ(r.status, 3) << describe(r);
  EXPECT_EQ(count_lines(r.err), 1u) << describe(r);
  EXPECT_FALSE(r.out.empty()) << "half of a multi-chunk recording holds whole chunks\n" << describe(r);
  EXPECT_LT(r.out.size(), full.out.size());
  EXPECT_EQ(full.out.compare(0, r.out.size(), r.out), 0) << "the replay of the truncated file is not a prefix";
}

TEST_F(BadReplay, AtBeyondTheEnd) {
  expect_one_line_error(e2e::run_command(vm({"replay", rec_, "--maps", "--at", "+100000s"})), "--at beyond the end");
}

TEST_F(BadReplay, PidNotInRecording) {
  std::string pid = std::to_string(absent_pid());
  auto r = e2e::run_command(vm({"replay", rec_, "--pid", pid}));
  expect_one_line_error(r, "--pid not in the recording");
  EXPECT_NE(r.err.find(pid), std::string::npos) << describe(r);
}

TEST_F(BadReplay, BadMoment) {
  expect_one_line_error(e2e::run_command(vm({"replay", rec_, "--maps", "--at", "yesterday"})), "--at yesterday");
}

}  // namespace
