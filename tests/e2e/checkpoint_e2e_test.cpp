// Checkpoints (format 2.1, issue 16): `replay --at T` starts at the
// recording's last checkpoint before T instead of its first record. A real
// recording of threads churning mappings, made with a checkpoint every
// 64 KiB of records, is stopped from outside at several moments: the layout
// replayed at each stop from a checkpoint must equal /proc, and every
// layout query (--maps, --pmap, --diff; every process or one) must print the
// same bytes, the same stderr and the same status whether it starts from
// the trailer's index, from a walk over the chunk headers, or from the
// first record (VMATRACE_SEEK=off) -- on the whole file and on one cut short.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "record/reader.h"

namespace {

using namespace std::chrono_literals;

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }

// Sets an environment variable for the commands this test starts.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

e2e::RunResult run_seek(const char* seek, const std::vector<std::string>& args) {
  if (!seek) return e2e::run_command(vm(args));
  ScopedEnv env("VMATRACE_SEEK", seek);
  return e2e::run_command(vm(args));
}

// The same query from a checkpoint found through the index, through the
// header walk, and from the first record: identical in every byte.
void expect_same_from_everywhere(const std::vector<std::string>& args, int* nonempty, int* inexact) {
  const auto from_start = run_seek("off", args);
  const auto indexed = run_seek(nullptr, args);
  const auto walked = run_seek("scan", args);
  std::string what;
  for (const auto& a : args) what += a + " ";
  EXPECT_EQ(indexed.status, from_start.status) << what << e2e::describe(indexed) << e2e::describe(from_start);
  EXPECT_EQ(indexed.out, from_start.out) << what
                                         << e2e::diff_lines(from_start.out, indexed.out, "from the start", "indexed");
  EXPECT_EQ(indexed.err, from_start.err) << what;
  EXPECT_EQ(walked.status, from_start.status) << what;
  EXPECT_EQ(walked.out, from_start.out) << what;
  EXPECT_EQ(walked.err, from_start.err) << what;
  if (from_start.out.size() > 100) {
    ++*nonempty;
  } else if (from_start.status == 3 && from_start.err.find("is not exact: the kernel dropped") != std::string::npos) {
    ++*inexact;  // a moment in a loss window: said so, the same way from everywhere
  } else {
    std::fprintf(stderr, "no layout from %s: exit %d, %zu bytes out, stderr: %s\n", what.c_str(), from_start.status,
                 from_start.out.size(), from_start.err.substr(0, 300).c_str());
  }
}

std::vector<uint64_t> moments(const std::vector<vmatrace::CheckpointEntry>& cps) {
  // Each checkpoint's own moment (no record after it is earlier), just
  // before it, and just after it; the end is added by the caller.
  std::vector<uint64_t> out;
  for (size_t i = 0; i < cps.size(); i += std::max<size_t>(1, cps.size() / 6)) {
    out.push_back(cps[i].ts);
    out.push_back(cps[i].ts - 1);
    out.push_back(cps[i].ts + 1000);
  }
  return out;
}

}  // namespace

TEST(SeekCheckpoints, ReplayAtFromACheckpointEqualsProcAndTheReplayFromTheStart) {
  e2e::TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  std::vector<e2e::OutsideStop> stops;
  pid_t pid = 0;
  {
    ScopedEnv every("VMATRACE_CHECKPOINT_BYTES", "65536");
    // A large ring: a sanitized (ASan) consumer falls behind six churning
    // threads with the default one, and a stop in a loss window is only
    // flagged (below), not compared.
    e2e::Subprocess tracer(
        vm({"record", "-o", rec, "--ringbuf-size", "256M", "--", e2e::workload("churnthreads"), "6", "4000"}));
    pid = e2e::first_child_with_threads(tracer.pid(), 7);
    ASSERT_NE(pid, 0) << "the workload did not start";
    stops = e2e::stops_of(pid, 6, 300ms);
    auto r = tracer.wait(120s);
    ASSERT_EQ(r.status, 0) << e2e::describe(r);
  }
  ASSERT_EQ(stops.size(), 6u) << "the workload ended before its stops";

  auto reader = vmatrace::RecordingReader::open(rec);
  const auto cps = reader.checkpoints();
  ASSERT_GE(cps.size(), 5u) << "the recording has too few checkpoints to test them";
  EXPECT_EQ(reader.checkpoints(/*use_index=*/false).size(), cps.size());
  std::fprintf(stderr, "%zu checkpoints in %s\n", cps.size(), rec.c_str());
  auto info = e2e::run_command(vm({"info", "--json", rec}));
  EXPECT_NE(info.out.find("\"checkpoints\":" + std::to_string(cps.size()) + ","), std::string::npos) << info.out;

  // Ground truth: the stops from outside, each replayed from a checkpoint.
  const std::string p = std::to_string(pid);
  int at_stop_after_a_checkpoint = 0, exact = 0;
  for (size_t i = 0; i < stops.size(); i++) {
    const std::string at = std::to_string(stops[i].ts);
    auto r = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", p}));
    auto nl = r.out.find('\n');
    const std::string body = nl == std::string::npos ? "" : r.out.substr(nl + 1);
    // A moment inside a loss window is said to be inexact (exit 3, one
    // line): nothing to compare there (Loss.ReplayAtAMomentOfLoss... tests it).
    if (r.status == 3 && r.err.find("is not exact: the kernel dropped") != std::string::npos) continue;
    exact++;
    if (stops[i].ts >= cps.front().ts) at_stop_after_a_checkpoint++;
    EXPECT_EQ(r.status, 0) << e2e::describe(r);
    EXPECT_EQ(body, stops[i].maps) << "stop " << i << "\n"
                                   << e2e::diff_lines(stops[i].maps, body, "/proc/" + p + "/maps",
                                                      "replay --maps --at " + at);
  }
  EXPECT_GE(exact, 4) << "too many stops in loss windows to compare with /proc";
  EXPECT_GE(at_stop_after_a_checkpoint, 3) << "the stops should fall after checkpoints";

  // A query at a moment in a loss window prints no layout (exit 3, one
  // line); a sanitized consumer under six churning threads can lose some.
  int nonempty = 0, inexact = 0;
  auto ms = moments(cps);
  ms.push_back(stops.back().ts);
  for (uint64_t m : ms) {
    const std::string at = std::to_string(m);
    expect_same_from_everywhere({"replay", rec, "--maps", "--at", at}, &nonempty, &inexact);
    expect_same_from_everywhere({"replay", rec, "--pmap", "--at", at, "--pid", p}, &nonempty, &inexact);
  }
  expect_same_from_everywhere({"replay", rec, "--diff", std::to_string(ms[1]), std::to_string(ms.back())}, &nonempty,
                              &inexact);
  // A query at a moment in a loss window prints no layout but says so
  // (exit 3); every other moment's queries print layouts, as before.
  EXPECT_GE(nonempty + inexact, static_cast<int>(ms.size()))
      << "the queries should print layouts (" << inexact << " said the moment was not exact)";

  // Cut short in the middle (no trailer, no index): the header walk finds
  // the checkpoints before the cut; the damage is reported the same way.
  const auto size = std::filesystem::file_size(rec);
  const std::string cut = dir.file("cut.vmat");
  std::filesystem::copy_file(rec, cut);
  std::filesystem::resize_file(cut, size * 6 / 10);
  auto cut_reader = vmatrace::RecordingReader::open(cut);
  EXPECT_GE(cut_reader.checkpoints().size(), 2u);
  for (uint64_t m : {cps[cps.size() / 4].ts + 1000, stops.back().ts}) {
    const std::string at = std::to_string(m);
    expect_same_from_everywhere({"replay", cut, "--maps", "--at", at}, &nonempty, &inexact);
  }
}
