// Exactness under threads and at attach (issue 15): a process whose threads
// churn private and shared anonymous mappings concurrently is recorded
// (`record -- CMD`) or attached to while it runs (`record -p PID`), stopped
// from outside at several moments (SIGSTOP, every thread stopped, read
// /proc/PID/maps, SIGCONT), and `replay --maps --at T --pid P` must equal
// /proc at every stop. The failures are intermittent by nature (which
// syscalls are in flight at the attach, which thread holds mmap_lock when
// another's record is made): run them repeatedly
// (ctest --repeat until-fail:10).

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::RunResult;
using e2e::TempDir;
using namespace std::chrono_literals;

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }

using e2e::OutsideStop;
using e2e::stops_of;

// VMATRACE_E2E_KEEP=DIR: a stop that does not match leaves the recording
// and that stop's /proc/PID/maps in DIR (named after the test), to study.
void keep_on_failure(const std::string& rec, size_t stop, const OutsideStop& s) {
  const char* dir = std::getenv("VMATRACE_E2E_KEEP");
  if (!dir || !*dir) return;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string base = std::string(dir) + "/" + info->name() + "." + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::copy_file(rec, base + ".vmat", std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) std::fprintf(stderr, "VMATRACE_E2E_KEEP: cannot copy %s: %s\n", rec.c_str(), ec.message().c_str());
  e2e::write_file(base + ".stop" + std::to_string(stop) + ".at" + std::to_string(s.ts) + ".maps", s.maps);
}

// Every stop replayed from rec must equal /proc; the message lists the
// first differing lines of each stop that does not.
void expect_replay_equals(const std::string& rec, pid_t pid, const std::vector<OutsideStop>& stops,
                          const std::string& what) {
  int matched = 0;
  for (size_t i = 0; i < stops.size(); i++) {
    std::string p = std::to_string(pid), at = std::to_string(stops[i].ts);
    auto r = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", p}));
    auto nl = r.out.find('\n');
    std::string body = nl == std::string::npos ? "" : r.out.substr(nl + 1);
    if (r.status == 0 && body == stops[i].maps) {
      matched++;
      continue;
    }
    keep_on_failure(rec, i, stops[i]);
    ADD_FAILURE() << what << ": stop " << i << " (pid " << p << ", ts " << at << "): replay exit " << r.status << " "
                  << r.err << "\n"
                  << e2e::diff_lines(stops[i].maps, body, "/proc/" + p + "/maps", "replay --maps --at " + at);
  }
  EXPECT_EQ(matched, static_cast<int>(stops.size())) << what << ": stops matched";
  std::fprintf(stderr, "%s: %d/%zu stops matched\n", what.c_str(), matched, stops.size());
}

// The workloads below run until told to end (the attach itself can take
// seconds on a loaded machine): SIGTERM, which they do not catch.
void end_workload(e2e::Subprocess& work) {
  ::kill(work.pid(), SIGTERM);
  auto w = work.wait(120s);
  ASSERT_EQ(w.status, 128 + SIGTERM) << e2e::describe(w);
}

constexpr int kStops = 6;

// The threaded tests check that concurrent threads' changes give /proc's
// layout, not the consumer's throughput (Loss.*, Overload.* do): a 256 MiB
// ring, as Checkpoints' churn test has. In the 6.1 VM (TCG, one vCPU shared
// by six churning threads and the consumer) the default ring lost records
// now and then, and a stop in that loss window is rightly not exact
// (replay said so, exit 3): the failures that kept them known-failing.
constexpr const char* kThreadsRing = "256M";

// `record -p` of a workload that runs until told to end: kStops stops from
// outside while it is traced, then SIGTERM; vmatrace ends with it, and
// every stop replayed from rec equals /proc. `ended`: the failure message
// when it ended before its stops. The ring is 256 MiB (kThreadsRing).
void record_attached_exactly(e2e::Subprocess& work, const std::string& rec, const std::string& what,
                             const std::string& ended) {
  e2e::Subprocess tracer(vm({"record", "--ringbuf-size", kThreadsRing, "-o", rec, "-p", std::to_string(work.pid())}));
  tracer.wait_for_banner();
  auto stops = stops_of(work.pid(), kStops, 300ms);
  end_workload(work);
  auto r = tracer.wait(120s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  ASSERT_EQ(stops.size(), static_cast<size_t>(kStops)) << ended;
  expect_replay_equals(rec, work.pid(), stops, what);
}

TEST(Exact, ThreadsChurnUnderCommand) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  e2e::Subprocess tracer(
      vm({"record", "--ringbuf-size", kThreadsRing, "-o", rec, "--", e2e::workload("churnthreads"), "6", "4000"}));
  const pid_t pid = e2e::first_child_with_threads(tracer.pid(), 7);
  ASSERT_NE(pid, 0) << "the workload did not start";
  auto stops = stops_of(pid, kStops, 300ms);
  auto r = tracer.wait(120s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  ASSERT_EQ(stops.size(), static_cast<size_t>(kStops)) << "the workload ended before its stops";
  expect_replay_equals(rec, pid, stops, "record -- churnthreads 6");
}

TEST(Exact, ThreadsChurnAttached) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  e2e::Subprocess work({e2e::workload("churnthreads"), "6", "600000"});
  std::this_thread::sleep_for(700ms);  // it runs a moment before the attach
  record_attached_exactly(work, rec, "record -p churnthreads 6", "the workload ended before its stops");
}

// What a new user tried first (issue 15): python3 threads churning
// mmap.mmap(-1, n) (MAP_SHARED|MAP_ANONYMOUS) and large bytearrays (malloc's
// private mmaps), attached to with -p.
TEST(Exact, PythonThreadsAttached) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat"), script = dir.file("churn.py");
  e2e::write_file(script,
                  "import mmap, random, threading, time\n"
                  "end = time.monotonic() + 600\n"
                  "def churn(seed):\n"
                  "    rnd = random.Random(seed)\n"
                  "    keep = []\n"
                  "    while time.monotonic() < end:\n"
                  "        m = mmap.mmap(-1, 4096 * rnd.randint(1, 16))\n"
                  "        m[0:1] = b'x'\n"
                  "        b = bytearray(4096 * rnd.randint(32, 64))\n"
                  "        keep.append((m, b))\n"
                  "        if len(keep) > 8:\n"
                  "            old, _ = keep.pop(rnd.randrange(len(keep)))\n"
                  "            old.close()\n"
                  "        time.sleep(0.0005)\n"
                  "ts = [threading.Thread(target=churn, args=(i,)) for i in range(4)]\n"
                  "for t in ts: t.start()\n"
                  "for t in ts: t.join()\n");
  e2e::Subprocess work({"python3", script});
  std::this_thread::sleep_for(800ms);
  record_attached_exactly(work, rec, "record -p python3 threads", "the script ended before its stops");
}

// -p PARENT traces its children: those that already exist too (and their
// threads), not only those forked after the attach.
TEST(Exact, AttachAdoptsExistingChildren) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat"), script = dir.file("parent.sh");
  e2e::write_file(script, "#!/bin/sh\n" + e2e::workload("churnthreads") + " 4 600000 &\nwait\nexit 0\n");
  e2e::Subprocess work({"sh", script});
  const pid_t child = e2e::first_child_with_threads(work.pid(), 5);
  ASSERT_NE(child, 0) << "the child did not start";
  std::this_thread::sleep_for(300ms);
  // A ring that holds the whole run's backlog: what this test checks is the
  // adoption of a child and its threads that ran before the attach, not
  // whether the consumer keeps up with four churning threads (Loss.* and
  // Overload.* do). In the 6.1 VM the guest's one vCPU is shared by the
  // threads and the consumer, and with the default ring a stop fell in a
  // loss window now and then (replay said so, exit 3).
  e2e::Subprocess tracer(vm({"record", "--ringbuf-size", kThreadsRing, "-o", rec, "-p", std::to_string(work.pid())}));
  tracer.wait_for_banner();
  auto stops = stops_of(child, kStops, 300ms);
  ::kill(child, SIGTERM);
  auto w = work.wait(120s);
  ASSERT_EQ(w.status, 0) << e2e::describe(w);
  auto r = tracer.wait(120s);
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  ASSERT_EQ(stops.size(), static_cast<size_t>(kStops)) << "the child ended before its stops";
  expect_replay_equals(rec, child, stops, "record -p sh (existing child churnthreads 4)");
}

// The layout read at an attach is one moment of the process (issue 15,
// "attach with no gap"): pingpong's thread moves a region between two
// places 3000 VMAs apart as fast as it can, so a walk of the address space
// made while it runs can find the region at both places (a layout the
// process never had, one VMA too many) or at neither (the next move cannot
// apply: "layout unknown", a resync). The workload's own knowledge is the
// oracle: its VMA count never changes once it runs, so the attach layout
// (replayed at its own time) has as many lines as /proc at any stop.
// vmatrace holds the process still while it reads the layout. Attached
// five times.
TEST(Exact, AttachReadsOneMoment) {
  TempDir dir;
  e2e::Subprocess work({e2e::workload("pingpong"), "600000", "3000"});
  std::this_thread::sleep_for(500ms);
  const std::string p = std::to_string(work.pid());
  auto lines = [](const std::string& text) { return std::count(text.begin(), text.end(), '\n'); };
  for (int round = 0; round < 5; round++) {
    std::string rec = dir.file("rec" + std::to_string(round) + ".vmat");
    e2e::Subprocess tracer(vm({"record", "-o", rec, "-p", p}));
    tracer.wait_for_banner();
    auto stops = stops_of(work.pid(), 2, 150ms);
    ::kill(tracer.pid(), SIGINT);
    auto r = tracer.wait(120s);
    ASSERT_EQ(r.status, 128 + SIGINT) << e2e::describe(r);
    EXPECT_EQ(r.err.find("layout unknown"), std::string::npos) << "round " << round << ": " << r.err;
    ASSERT_EQ(stops.size(), 2u) << "the workload ended before its stops";
    expect_replay_equals(rec, work.pid(), stops, "record -p pingpong, round " + std::to_string(round));
    // The attach layout at its own time: "TS PID/TID layout N VMAs".
    auto records = e2e::run_command(vm({"replay", rec, "--records"}));
    ASSERT_EQ(records.status, 0) << e2e::describe(records);
    const size_t at = records.out.find(" layout ");
    ASSERT_NE(at, std::string::npos) << "no layout record in round " << round;
    const size_t bol = records.out.rfind('\n', at) == std::string::npos ? 0 : records.out.rfind('\n', at) + 1;
    const std::string ts = records.out.substr(bol, records.out.find(' ', bol) - bol);
    auto seed = e2e::run_command(vm({"replay", rec, "--maps", "--at", ts, "--pid", p}));
    ASSERT_EQ(seed.status, 0) << e2e::describe(seed);
    const std::string body = seed.out.substr(seed.out.find('\n') + 1);
    EXPECT_EQ(lines(body), lines(stops[0].maps))
        << "round " << round << ": the layout read at the attach (" << ts << ") is not one the process had\n"
        << e2e::diff_lines(stops[0].maps, body, "/proc/" + p + "/maps at the first stop", "replay --maps --at " + ts);
  }
  end_workload(work);
}

// An attach to a process with a huge layout loses nothing (issue 15: the
// stress-ng --brk worker attached at ~100k heap pieces lost ~1M events with
// the 16 MiB ring while vmatrace read and handled its layout). brkpieces
// builds a heap of 100k pieces and then calls brk() without pause; the
// process is held still while its layout is read and handled, so the ring
// buffer does not overflow meanwhile.
TEST(Exact, AttachToHugeHeapLosesNothing) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  // 100k read-only pieces between writable ones: about 200k VMAs, past a
  // fresh machine's vm.max_map_count (65530).
  e2e::AtLeastSysctl maps_allowed("/proc/sys/vm/max_map_count", 262144);
  e2e::Subprocess work({e2e::workload("brkpieces"), "100000", "600000"});
  const std::string p = std::to_string(work.pid());
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto maps = e2e::read_file("/proc/" + p + "/maps").value_or("");
    if (std::count(maps.begin(), maps.end(), '\n') > 100000) break;
    ASSERT_FALSE(work.poll()) << "brkpieces ended before it built its heap: " << work.stderr_text();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "brkpieces did not build its heap";
    std::this_thread::sleep_for(200ms);
  }
  e2e::Subprocess tracer(vm({"record", "-o", rec, "-p", p}));
  tracer.wait_for_banner();
  auto stops = stops_of(work.pid(), 2, 500ms);
  ::kill(tracer.pid(), SIGINT);
  auto r = tracer.wait(300s);
  ASSERT_EQ(r.status, 128 + SIGINT) << e2e::describe(r);
  EXPECT_NE(r.err.find("; lost 0"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("failed to deliver"), std::string::npos) << r.err;
  ASSERT_EQ(stops.size(), 2u) << "the workload ended before its stops";
  expect_replay_equals(rec, work.pid(), stops, "record -p brkpieces 100000");
  end_workload(work);
}

}  // namespace
