// Overload that tells the truth (issue 22): every record the kernel failed
// to deliver is reported as a loss record in the stream, at the moment it is
// found (a periodic check, or a process's exit record), followed by a resync
// of a live process's layout from /proc; the live summary, `info` and
// `replay` give the same total, and that total equals the BPF side's own
// count of ring buffer reservation failures (the recording's trailer keeps
// it as lost_in_kernel).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::RunResult;
using e2e::TempDir;
using namespace std::chrono_literals;

std::string vm() { return e2e::vmatrace_bin(); }

// The live summary's "; lost N" (stderr).
std::optional<uint64_t> summary_lost(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex("; lost (\\d+)"))) return std::nullopt;
  return std::stoull(m[1]);
}

// A field of one JSON line as printed by vmatrace (no spaces, keys unique
// per line): plain finds, as replay of an overloaded run prints millions.
uint64_t json_u64(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  auto p = line.find(k);
  if (p == std::string::npos) return UINT64_MAX;
  return std::strtoull(line.c_str() + p + k.size(), nullptr, 10);
}

struct Totals {
  uint64_t info_lost = UINT64_MAX, info_kernel = UINT64_MAX, replay_lost = 0, loss_records = 0;
  uint64_t unresynced = 0;  // loss records of a live process not followed by its layout
};

// info --json and replay --json of rec: the loss totals, and whether each
// loss record of a process is followed (as that process's next record) by a
// resync layout, or by its exit (a loss found at exit needs none).
Totals totals_of(const std::string& rec) {
  Totals t;
  auto info = e2e::run_command({vm(), "info", "--json", rec});
  EXPECT_EQ(info.status, 0) << e2e::describe(info);
  t.info_lost = json_u64(info.out, "lost");
  t.info_kernel = json_u64(info.out, "lost_in_kernel");
  EXPECT_NE(info.out.find("\"state\":\"clean\""), std::string::npos) << info.out;
  // replay --json streamed through awk: an overloaded run replays to
  // gigabytes of JSON, which must not be held in memory here.
  const std::string awk = R"AWK(
    { ev = ""; if (match($0, /"event":"[^"]*"/)) ev = substr($0, RSTART + 9, RLENGTH - 10)
      pid = ""; if (match($0, /"pid":[0-9]+/)) pid = substr($0, RSTART + 6, RLENGTH - 6)
      if (ev == "lost") {
        n++; if (match($0, /"lost":[0-9]+/)) sum += substr($0, RSTART + 7, RLENGTH - 7); aw[pid] = $0
      } else if (pid in aw) {
        if (ev != "layout" && ev != "exit") { bad++; print "loss: " aw[pid]; print "then: " $0 }
        delete aw[pid]
      } }
    END { printf "loss_records %d\nreplay_lost %.0f\nunresynced %d\n", n, sum, bad })AWK";
  auto rep = e2e::run_command(
      {"bash", "-c", "set -o pipefail; \"$0\" replay --json \"$1\" | awk \"$2\"", vm(), rec, awk}, 600s);
  EXPECT_EQ(rep.status, 0) << e2e::describe(rep);
  std::smatch m;
  if (std::regex_search(rep.out, m, std::regex("loss_records (\\d+)\nreplay_lost (\\d+)\nunresynced (\\d+)"))) {
    t.loss_records = std::stoull(m[1]);
    t.replay_lost = std::stoull(m[2]);
    t.unresynced = std::stoull(m[3]);
  } else {
    ADD_FAILURE() << "replay | awk: " << e2e::describe(rep);
  }
  EXPECT_EQ(t.unresynced, 0u) << "loss records not followed by their process's resync layout:\n" << rep.out;
  return t;
}

void expect_one_total(const RunResult& r, const Totals& t, const std::string& what) {
  auto live = summary_lost(r.err);
  ASSERT_TRUE(live) << what << ": no summary\n" << e2e::describe(r);
  EXPECT_EQ(r.err.find("failed to deliver"), std::string::npos) << what << "\n" << r.err;
  EXPECT_EQ(t.info_kernel, *live) << what << ": the kernel's count of reservation failures vs the reported total";
  EXPECT_EQ(t.info_lost, *live) << what << ": info vs the live summary";
  EXPECT_EQ(t.replay_lost, *live) << what << ": replay's loss records vs the live summary";
  EXPECT_EQ(t.unresynced, 0u) << what << ": loss records not followed by a resync";
}

// replay --maps --at ts --pid pid, without its header line.
std::string replayed_maps(const std::string& rec, pid_t pid, uint64_t ts) {
  auto r = e2e::run_command({vm(), "replay", rec, "--maps", "--at", std::to_string(ts), "--pid", std::to_string(pid)});
  EXPECT_EQ(r.status, 0) << r.err;
  auto nl = r.out.find('\n');
  return nl == std::string::npos ? "" : r.out.substr(nl + 1);
}

struct StopSeen {
  pid_t pid = 0;
  uint64_t ts = 0;
  std::string maps;
};

// Every pid in the cgroup killed (processes this test started), until it
// is empty: its directory can then go.
void empty_cgroup(const e2e::Cgroup2& cg) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    std::string procs = e2e::read_file(cg.path() + "/cgroup.procs").value_or("");
    if (procs.empty() || std::chrono::steady_clock::now() > deadline) return;
    for (size_t at = 0, nl; (nl = procs.find('\n', at)) != std::string::npos; at = nl + 1)
      ::kill(static_cast<pid_t>(std::stol(procs.substr(at, nl - at))), SIGKILL);
    std::this_thread::sleep_for(20ms);
  }
}

// Interrupted while what it traces never stops writing: two shells in a
// cgroup start storm after storm, and each new storm joins the trace at its
// fork, also after vmatrace stopped the processes it knew. vmatrace reads
// what the ring held at the stop, and no more, and exits however long the
// storms go on (a hang fails the test at 120 s); what was written after the
// stop is counted as lost, left unread. The live summary, its "left unread"
// line, info and replay agree.
TEST(Overload, InterruptedWhileACgroupKeepsStormingReadsUpToTheStopAndExits) {
  e2e::Cgroup2 cg("vmatrace-unread");
  TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  const std::string loop =
      "echo $$ > " + cg.path() + "/cgroup.procs && while :; do " + e2e::workload("storm") + " 300; done";
  e2e::Subprocess a({"sh", "-c", loop}), b({"sh", "-c", loop});
  struct Stopper {  // however the test ends: the loops, then their storms
    const e2e::Cgroup2& cg;
    pid_t a, b;
    ~Stopper() {
      ::kill(a, SIGKILL);
      ::kill(b, SIGKILL);
      empty_cgroup(cg);
    }
  } stopper{cg, a.pid(), b.pid()};
  {
    e2e::Subprocess tracer({vm(), "record", "--cgroup", cg.path(), "-o", rec});
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (tracer.stderr_text().find("vmatrace: tracing") == std::string::npos) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no banner: " << tracer.stderr_text();
      ASSERT_FALSE(tracer.poll()) << tracer.stderr_text();
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(1500ms);
    // A backlog first (vmatrace held 1 s while the storms run), so that its
    // last drain takes a while: the storms that join meanwhile write behind
    // the stop, and those records stay in the ring.
    ASSERT_EQ(::kill(tracer.pid(), SIGSTOP), 0);
    std::this_thread::sleep_for(1s);
    ASSERT_EQ(::kill(tracer.pid(), SIGINT), 0);
    ASSERT_EQ(::kill(tracer.pid(), SIGCONT), 0);
    RunResult r = tracer.wait(120s);  // throws (the test fails) if it never exits
    EXPECT_EQ(r.status, 128 + SIGINT) << e2e::describe(r);
    auto live = summary_lost(r.err);
    ASSERT_TRUE(live) << e2e::describe(r);
    uint64_t unread = 0;
    std::smatch m;
    if (std::regex_search(r.err, m, std::regex("vmatrace: (\\d+) records written after tracing stopped were not read")))
      unread = std::stoull(m[1]);
    EXPECT_LE(unread, *live) << r.err;
    Totals t = totals_of(rec);
    EXPECT_EQ(t.info_lost, *live) << "info vs the live summary\n" << r.err;
    EXPECT_EQ(t.replay_lost, *live) << "replay's loss records vs the live summary\n" << r.err;
    auto info = e2e::run_command({vm(), "info", "--json", rec});
    const uint64_t info_unread = json_u64(info.out, "lost_unread");
    EXPECT_EQ(info_unread == UINT64_MAX ? 0 : info_unread, unread) << info.out << "\n" << r.err;
    EXPECT_GT(json_u64(info.out, "records"), 10000u) << "the storms were not traced: " << info.out;
    // The unread part as replay's loss records flag it.
    auto rep = e2e::run_command({"bash", "-c",
                                 "set -o pipefail; \"$0\" replay --json \"$1\" | awk '/\"event\":\"lost\"/ && "
                                 "/\"unread\":true/ { match($0, /\"lost\":[0-9]+/); n += substr($0, RSTART + 7, "
                                 "RLENGTH - 7) } END { printf \"%d\\n\", n }'",
                                 vm(), rec},
                                600s);
    ASSERT_EQ(rep.status, 0) << e2e::describe(rep);
    EXPECT_EQ(std::stoull(rep.out), unread) << "replay's unread loss records vs the live line";
  }
}

// The 8-thread storm with a 64 KiB ring: it loses; the workload stops itself
// after its threads joined, and by then (a loss check runs every 100 ms while
// it sits stopped) the layout was resynced: it must equal /proc.
TEST(Overload, SmallRingOnThreadStormReportsEveryLossAndResyncs) {
  TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  std::vector<StopSeen> stops;
  auto r = e2e::run_resuming_stops(
      {vm(), "record", "--ringbuf-size", "64K", "-o", rec, "--", e2e::workload("threads"), "8", "20000", "--stop"},
      [&](pid_t q) {
        std::this_thread::sleep_for(400ms);  // past the next loss check, which resyncs
        StopSeen s{q, e2e::now_ns(), e2e::read_file("/proc/" + std::to_string(q) + "/maps").value_or("")};
        stops.push_back(std::move(s));
      },
      300s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto live = summary_lost(r.err);
  ASSERT_TRUE(live) << r.err;
  EXPECT_GT(*live, 0u) << "a 64 KiB ring should not hold the 8-thread storm";
  Totals t = totals_of(rec);
  expect_one_total(r, t, "threads 8 20000, 64K ring");
  EXPECT_GT(t.loss_records, 0u);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(replayed_maps(rec, stops[0].pid, stops[0].ts), stops[0].maps)
      << "the layout at the stop after the resync differs from /proc";
}

// stress-ng's mmap stressor (forked workers, each its own process) with a
// 64 KiB ring: the same totals everywhere, equal to the kernel's count.
TEST(Overload, SmallRingOnStressNgMmapReportsEveryLoss) {
  TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  auto r = e2e::run_command({vm(), "record", "--ringbuf-size", "64K", "-o", rec, "--", "stress-ng", "--mmap", "2",
                             "--mmap-bytes", "16M", "-t", "3", "--quiet"},
                            300s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto live = summary_lost(r.err);
  ASSERT_TRUE(live) << r.err;
  EXPECT_GT(*live, 0u) << "a 64 KiB ring should not hold stress-ng --mmap";
  expect_one_total(r, totals_of(rec), "stress-ng --mmap 2, 64K ring");
}

// The traced process SIGKILLed at a random moment of heavy activity, 20
// times: each trace ends by itself with its summary, a clean file, and the
// same loss totals everywhere.
TEST(Overload, TracedProcessKilledAtRandomMomentsEndsCleanly) {
  std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < 20; i++) {
    SCOPED_TRACE("run " + std::to_string(i));
    TempDir dir;
    const std::string rec = dir.file("rec.vmat");
    e2e::Subprocess tracer(
        {vm(), "record", "--ringbuf-size", "256K", "-o", rec, "--", e2e::workload("threads"), "4", "100000000"});
    // The workload's pid, once it runs (vmatrace forks it).
    pid_t target = 0;
    for (int w = 0; w < 3000 && !target; w++) {
      for (pid_t c : e2e::children_of(tracer.pid()))
        if (e2e::read_file("/proc/" + std::to_string(c) + "/comm").value_or("") == "threads\n") target = c;
      if (!target) std::this_thread::sleep_for(5ms);
    }
    ASSERT_NE(target, 0) << "the workload never started";
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 1500)(rng)));
    ASSERT_EQ(::kill(target, SIGKILL), 0);
    RunResult r = tracer.wait(120s);
    EXPECT_EQ(r.status, 128 + SIGKILL) << e2e::describe(r);
    Totals t = totals_of(rec);
    expect_one_total(r, t, "killed run " + std::to_string(i));
    if (HasFailure()) break;
  }
}

// vmatrace itself stopped for 5 s while the workload keeps mapping: the ring
// overflows, and once vmatrace runs again it reports the loss, resyncs, and
// the layout is exact at the workload's next stop. The workload maps for 9 s
// at whatever speed it gets (a fixed count took two minutes traced, once the
// tracer ran again), so it outlasts the 5 s stop on any machine.
TEST(Overload, TracerStoppedFiveSecondsReportsLossAndResyncs) {
  TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  e2e::Subprocess tracer(
      {vm(), "record", "--ringbuf-size", "1M", "-o", rec, "--", e2e::workload("threads"), "2", "9s", "--stop"});
  pid_t target = 0;
  for (int w = 0; w < 3000 && !target; w++) {
    for (pid_t c : e2e::children_of(tracer.pid()))
      if (e2e::read_file("/proc/" + std::to_string(c) + "/comm").value_or("") == "threads\n") target = c;
    if (!target) std::this_thread::sleep_for(5ms);
  }
  ASSERT_NE(target, 0) << "the workload never started";
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(::kill(tracer.pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(5s);
  ASSERT_NE(e2e::process_state(target), 'T') << "the workload ended while vmatrace was stopped: make it longer";
  ASSERT_EQ(::kill(tracer.pid(), SIGCONT), 0);
  // The workload's own stop after its joins.
  auto deadline = std::chrono::steady_clock::now() + 240s;
  while (!e2e::fully_stopped(target)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the workload never reached its stop";
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(400ms);  // past the next loss check
  const uint64_t ts = e2e::now_ns();
  const std::string maps = e2e::read_file("/proc/" + std::to_string(target) + "/maps").value_or("");
  ::kill(target, SIGCONT);
  RunResult r = tracer.wait(240s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto live = summary_lost(r.err);
  ASSERT_TRUE(live) << r.err;
  EXPECT_GT(*live, 0u) << "5 s without a reader should overflow a 1 MiB ring";
  Totals t = totals_of(rec);
  expect_one_total(r, t, "vmatrace stopped 5 s");
  EXPECT_EQ(replayed_maps(rec, target, ts), maps) << "the layout at the stop after the resync differs from /proc";
}

}  // namespace
