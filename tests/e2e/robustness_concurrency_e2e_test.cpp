// Concurrency cases of docs/reliability.md: a pid reused during
// one trace must not mix the two processes' layouts, and 64 threads mapping
// and unmapping at once must lose and misattribute nothing. The oracles are
// the kernel (/proc/PID/maps, read while the process is stopped or by the
// process itself as its last act) and the workloads' own counts.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.h"

using e2e::describe;
using e2e::Stop;
using e2e::TempDir;
using e2e::TraceHarness;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The value of `key=<number>` in a workload's output, or -1.
long long value_of(const std::string& out, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("(^|\\s)" + key + "=(\\d+)"))) return -1;
  return std::stoll(m[2]);
}

// The JSON stream's "maps" blocks (trace --maps at each process's end), in
// order, with JSON string escapes undone (only \n and \\ occur in maps text
// of these workloads; anything else is kept as is).
std::vector<std::pair<long, std::string>> maps_blocks(const std::string& json) {
  std::vector<std::pair<long, std::string>> out;
  std::regex re(R"re(^\{"event":"maps","pid":(\d+),"comm":"[^"]*","maps":"(.*)"\}$)re");
  for (const auto& l : e2e::split_lines(json)) {
    std::smatch m;
    if (!std::regex_match(l, m, re)) continue;
    std::string raw = m[2], text;
    for (size_t i = 0; i < raw.size(); i++) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        char c = raw[++i];
        text += c == 'n' ? '\n' : c;
      } else {
        text += raw[i];
      }
    }
    out.emplace_back(std::stol(m[1]), text);
  }
  return out;
}

// ---- pid reuse -------------------------------------------------------------------

// Through the vmatrace binary: the layout --maps prints when each holder of
// the pid exits is that holder's own, as it read /proc/self/maps just
// before exiting.
TEST(Robustness, PidReuseKeepsLayoutsApart) {
  TempDir dir;
  auto r = e2e::run_command(
      // As root even under sudo: writing ns_last_pid needs it.
      e2e::vmatrace_argv({"trace", "--json", "--maps", "--faults=off", "--user", "root", "--", "sh", "-c",
                          "exec \"$0\" \"$1\" >\"$1/out\"", e2e::workload("pidreuse"), dir.path()}),
      std::chrono::seconds(120));
  ASSERT_EQ(r.status, 0) << describe(r) << e2e::read_file(dir.file("out")).value_or("");
  auto out = e2e::read_file(dir.file("out")).value_or("");
  long pid = value_of(out, "pid");
  ASSERT_GT(pid, 0) << out;
  EXPECT_GE(value_of(out, "attempts"), 1) << out;
  auto a = e2e::read_file(dir.file("a.maps")), b = e2e::read_file(dir.file("b.maps"));
  ASSERT_TRUE(a && b) << "the children did not write their maps\n" << out;
  ASSERT_NE(*a, *b) << "the two holders of pid " << pid << " must differ for the test to mean anything";
  std::vector<std::string> of_pid;
  for (const auto& [p, text] : maps_blocks(r.out))
    if (p == pid) of_pid.push_back(text);
  ASSERT_EQ(of_pid.size(), 2u) << "one maps block per holder of pid " << pid << "\n" << describe(r);
  EXPECT_EQ(of_pid[0], *a) << "first holder of pid " << pid << "\n"
                           << e2e::diff_lines(*a, of_pid[0], "its /proc/self/maps", "vmatrace --maps");
  EXPECT_EQ(of_pid[1], *b) << "second holder of pid " << pid << "\n"
                           << e2e::diff_lines(*b, of_pid[1], "its /proc/self/maps", "vmatrace --maps");
  EXPECT_TRUE(has(r.err, "; lost 0")) << describe(r);
}

// In-process, stopping each holder once its layout is complete: the model
// equals /proc/PID/maps for both: the second starts from its parent's
// layout at fork, not from the first holder's leftovers.
TEST(Robustness, PidReuseModelEqualsProcMapsForBothHolders) {
  TempDir dir;
  TraceHarness::Options o;
  o.user = "root";  // even under sudo: writing ns_last_pid needs it
  TraceHarness h(o);
  h.spawn({"sh", "-c", "exec \"$0\" --stop >\"$1\"", e2e::workload("pidreuse"), dir.file("out")});
  std::vector<pid_t> stopped;
  h.run([&](const Stop& s) {
    stopped.push_back(s.pid);
    auto kernel = e2e::read_file("/proc/" + std::to_string(s.pid) + "/maps");
    ASSERT_TRUE(kernel) << "cannot read /proc/" << s.pid << "/maps";
    std::string model = h.model_maps(s.pid);
    EXPECT_EQ(model, *kernel) << "stop #" << s.index << " of pid " << s.pid << "\n"
                              << e2e::diff_lines(*kernel, model, "/proc/PID/maps", "vmatrace model");
  });
  auto out = e2e::read_file(dir.file("out")).value_or("");
  EXPECT_EQ(h.exit_status(), 0) << out;
  ASSERT_EQ(stopped.size(), 2u) << out;
  EXPECT_EQ(stopped[0], stopped[1]) << "B did not get A's pid\n" << out;
  EXPECT_EQ(stopped[0], value_of(out, "pid")) << out;
  EXPECT_EQ(h.session().processor().stats().lost, 0u);
}

// ---- 64 threads --------------------------------------------------------------

// What one worker thread of tests/workloads/threads.c says it did.
struct ThreadCounts {
  long pages = 0, mmaps = 0, munmaps = 0;
};

std::map<long, ThreadCounts> workload_counts(const std::string& out) {
  std::map<long, ThreadCounts> m;
  std::regex re(R"(^thread tid=(\d+) pages=(\d+) mmaps=(\d+) munmaps=(\d+)$)");
  for (const auto& l : e2e::split_lines(out)) {
    std::smatch x;
    if (std::regex_match(l, x, re)) m[std::stol(x[1])] = {std::stol(x[2]), std::stol(x[3]), std::stol(x[4])};
  }
  return m;
}

// Checks the JSON event stream of a trace of `threads` against the
// workload's own per-thread counts: every worker's mmaps and munmaps are
// there, exactly as many, all of its length and attributed to its process;
// and no mmap or munmap names a thread the workload does not have.
void expect_threads_attributed(const std::string& json, const std::string& workload_out, int threads,
                               const std::string& what) {
  auto want = workload_counts(workload_out);
  ASSERT_EQ(want.size(), static_cast<size_t>(threads)) << what << ": workload output\n" << workload_out;
  std::map<long, ThreadCounts> seen;
  std::set<long> pids;
  long wrong_len = 0, stranger = 0;
  std::regex ev_re(R"re("pid":(\d+),"tid":(\d+),"comm":"[^"]*","event":"(mmap|munmap)",.*?"len":(\d+),)re");
  for (const auto& l : e2e::split_lines(json)) {
    std::smatch m;
    if (!std::regex_search(l, m, ev_re)) continue;
    long pid = std::stol(m[1]), tid = std::stol(m[2]), len = std::stol(m[4]);
    auto w = want.find(tid);
    if (w == want.end()) {
      stranger += tid != pid;  // the main thread maps stacks and libraries
      continue;
    }
    pids.insert(pid);
    wrong_len += len != w->second.pages * 4096;
    (m[3] == "mmap" ? seen[tid].mmaps : seen[tid].munmaps)++;
  }
  EXPECT_EQ(pids.size(), 1u) << what << ": the workers' events name more than one process";
  EXPECT_EQ(wrong_len, 0) << what << ": events of a worker with another worker's length (misattributed)";
  EXPECT_EQ(stranger, 0) << what << ": mmap/munmap events of threads the workload does not have";
  int mismatched = 0;
  for (const auto& [tid, w] : want) {
    const auto& s = seen[tid];
    if (s.mmaps == w.mmaps && s.munmaps == w.munmaps) continue;
    if (++mismatched <= 5)
      ADD_FAILURE() << what << ": thread " << tid << " did " << w.mmaps << " mmaps and " << w.munmaps
                    << " munmaps; the trace has " << s.mmaps << " and " << s.munmaps;
  }
  EXPECT_EQ(mismatched, 0) << what << ": threads whose counts differ";
}

constexpr int kThreads = 64, kIterations = 200;

// Through the vmatrace binary, live JSON stream.
TEST(Robustness, SixtyFourThreadsLoseNothing) {
  TempDir dir;
  auto r =
      e2e::run_command(e2e::vmatrace_argv({"trace", "--json", "--faults=off", "--", "sh", "-c",
                                           "o=$1; shift; exec \"$0\" \"$@\" >\"$o\"", e2e::workload("threads"),
                                           dir.file("out"), std::to_string(kThreads), std::to_string(kIterations)}),
                       std::chrono::seconds(120));
  ASSERT_EQ(r.status, 0) << describe(r);
  // The claim holds when no loss was reported; a default-sized ring buffer
  // must not lose on this load at all.
  ASSERT_TRUE(has(r.err, "; lost 0")) << describe(r);
  EXPECT_FALSE(has(r.out, "\"event\":\"lost\"")) << describe(r);
  expect_threads_attributed(r.out, e2e::read_file(dir.file("out")).value_or(""), kThreads, "trace --json");
}

// In-process: when the workload stops after its joins, the model equals
// /proc/PID/maps, and the stream has every worker's events, attributed as
// the workload counted them.
TEST(Robustness, SixtyFourThreadsFinalLayoutEqualsProcMaps) {
  TempDir dir;
  TraceHarness::Options o;
  o.json_events_path = dir.file("events.json");
  o.timeout = std::chrono::seconds(120);
  std::string out;
  {
    // Scoped: the event stream is complete once the harness (its Session) ends.
    TraceHarness h(o);
    h.spawn({"sh", "-c", "o=$1; shift; exec \"$0\" \"$@\" >\"$o\"", e2e::workload("threads"), dir.file("out"),
             std::to_string(kThreads), std::to_string(kIterations), "--stop"});
    int stops = 0;
    h.run([&](const Stop& s) {
      stops++;
      auto kernel = e2e::read_file("/proc/" + std::to_string(s.pid) + "/maps");
      ASSERT_TRUE(kernel) << "cannot read /proc/" << s.pid << "/maps";
      std::string model = h.model_maps(s.pid);
      EXPECT_EQ(model, *kernel) << "after the joins, pid " << s.pid << "\n"
                                << e2e::diff_lines(*kernel, model, "/proc/PID/maps", "vmatrace model");
    });
    out = e2e::read_file(dir.file("out")).value_or("");
    EXPECT_EQ(h.exit_status(), 0) << out;
    EXPECT_EQ(stops, 1) << out;
    const auto& st = h.session().processor().stats();
    ASSERT_EQ(st.lost, 0u) << "loss reported: the no-loss claim does not apply";
    EXPECT_EQ(st.rejected, 0u);
  }
  expect_threads_attributed(e2e::read_file(o.json_events_path).value_or(""), out, kThreads, "in-process JSON stream");
}

}  // namespace
