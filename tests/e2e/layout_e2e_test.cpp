// The model against the kernel: at every checkpoint (the traced process
// stopped itself with SIGSTOP), the layout vmatrace rebuilt from events must
// be /proc/PID/maps, line for line.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

using e2e::Stop;
using e2e::TraceHarness;

namespace {

std::string comm_of(pid_t pid) {
  auto c = e2e::read_file("/proc/" + std::to_string(pid) + "/comm").value_or("?\n");
  if (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// Compares the model with the kernel for a stopped process; returns whether
// they matched (failures are recorded, not fatal, so later checkpoints
// still run).
bool expect_maps_match(const TraceHarness& h, const Stop& s, const std::string& what) {
  auto kernel = e2e::read_file("/proc/" + std::to_string(s.pid) + "/maps");
  if (!kernel) {
    ADD_FAILURE() << what << ": cannot read /proc/" << s.pid << "/maps";
    return false;
  }
  std::string model = h.model_maps(s.pid);
  if (model == *kernel) return true;
  ADD_FAILURE() << what << ", stop #" << s.index << " of pid " << s.pid << " (" << comm_of(s.pid)
                << "): model differs from /proc\n"
                << e2e::diff_lines(*kernel, model, "/proc/" + std::to_string(s.pid) + "/maps", "vmatrace model");
  return false;
}

struct StepCase {
  const char* step;
  int stops;  // checkpoints the step takes (all processes)
};

// Stops per step of tests/workloads/checkpoints.c.
const StepCase kSteps[] = {
    {"merge", 1},  {"mprotect", 3}, {"munmap", 3}, {"mremap", 3}, {"file", 1},   {"deleted", 1},
    {"shanon", 1}, {"brk", 2},      {"stack", 1},  {"thread", 2}, {"dlopen", 2}, {"dontfork", 1},
    {"mlock", 6},  {"pkey", 2},     {"shm", 5},    {"fork", 2},
};

class CheckpointStep : public ::testing::TestWithParam<StepCase> {};

TEST_P(CheckpointStep, ModelEqualsProcMapsAtEveryCheckpoint) {
  const auto& c = GetParam();
  TraceHarness h;
  pid_t pid = h.spawn({e2e::workload("checkpoints"), c.step});
  int stops = 0;
  std::vector<pid_t> stopped_pids;
  h.run([&](const Stop& s) {
    stops++;
    stopped_pids.push_back(s.pid);
    expect_maps_match(h, s, std::string("step ") + c.step);
  });
  EXPECT_EQ(h.exit_status(), 0) << "the workload itself failed (see its stderr)";
  EXPECT_EQ(stops, c.stops) << "checkpoints seen for step " << c.step;
  if (std::string(c.step) == "fork") {
    // The forked child checkpoints too: the model followed it.
    bool child_seen = false;
    for (pid_t p : stopped_pids) child_seen |= p != pid;
    EXPECT_TRUE(child_seen) << "the forked child's own checkpoint was not seen";
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, CheckpointStep, ::testing::ValuesIn(kSteps),
                         [](const ::testing::TestParamInfo<StepCase>& i) { return std::string(i.param.step); });

// All steps in one process: the same operations on a layout that already
// went through the others (heap, thread stacks, libraries around).
TEST(Layout, AllCheckpointsInOneRun) {
  TraceHarness h;
  h.spawn({e2e::workload("checkpoints")});
  int stops = 0, mismatches = 0;
  h.run([&](const Stop& s) {
    stops++;
    if (!expect_maps_match(h, s, "all steps")) mismatches++;
  });
  EXPECT_EQ(h.exit_status(), 0);
  // The per-step counts less the merge step that mprotect and munmap run
  // themselves when alone.
  int expected = 0;
  for (const auto& c : kSteps) expected += c.stops;
  EXPECT_EQ(stops, expected - 2);
  EXPECT_EQ(mismatches, 0);
}

// A real interpreter: many libraries, a big heap, arena mmaps, its own
// mmap module.
TEST(Layout, Python) {
  const char* script =
      "import json, decimal, os, signal\n"
      "os.kill(os.getpid(), signal.SIGSTOP)\n"
      "b = bytearray(16 << 20)\n"
      "os.kill(os.getpid(), signal.SIGSTOP)\n"
      "del b\n"
      "import mmap\n"
      "m = mmap.mmap(-1, 1 << 16)\n"
      "m[0] = 1\n"
      "os.kill(os.getpid(), signal.SIGSTOP)\n";
  TraceHarness h;
  h.spawn({"/usr/bin/python3", "-c", script});
  int stops = 0;
  h.run([&](const Stop& s) {
    stops++;
    expect_maps_match(h, s, "python3");
  });
  EXPECT_EQ(h.exit_status(), 0);
  EXPECT_EQ(stops, 3);
}

// A real C compiler run: the gcc driver forks and execs cc1 and as, each a
// big program with its own libraries. A preloaded object (workloads/
// stopatexit.so) makes every one of them stop after the dynamic loader and
// again after its destructors; the model must equal /proc at each stop.
TEST(Layout, CCompilerRun) {
  char dir_template[] = "/tmp/vmatrace-cc-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string src = dir + "/unit.c", obj = dir + "/unit.o";
  {
    std::ofstream f(src);
    f << "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
         "struct node { struct node *next; char name[32]; };\n"
         "static int cmp(const void *a, const void *b) { return strcmp(a, b); }\n"
         "int main(int argc, char **argv) {\n"
         "  struct node *head = NULL;\n"
         "  for (int i = 0; i < argc; i++) { struct node *n = malloc(sizeof *n);\n"
         "    snprintf(n->name, sizeof n->name, \"%s\", argv[i]); n->next = head; head = n; }\n"
         "  qsort(argv, (size_t)argc, sizeof *argv, cmp);\n"
         "  for (struct node *n = head; n; n = n->next) puts(n->name);\n"
         "  return 0;\n}\n";
  }
  TraceHarness h;
  h.spawn({"/usr/bin/env", "LD_PRELOAD=" + e2e::workload("stopatexit.so"), "/usr/bin/gcc", "-O2", "-g", "-c", src, "-o",
           obj});
  int stops = 0;
  std::set<std::string> programs;
  h.run([&](const Stop& s) {
    stops++;
    programs.insert(comm_of(s.pid));
    expect_maps_match(h, s, "gcc -O2 -c");
  });
  EXPECT_EQ(h.exit_status(), 0) << "the compiler failed";
  EXPECT_TRUE(e2e::read_file(obj).has_value()) << "no object file was written";
  // Two stops each for the driver, cc1 and as at least.
  EXPECT_GE(stops, 6);
  std::string seen;
  for (const auto& p : programs) seen += " " + p;
  RecordProperty("programs", seen);
  RecordProperty("stops", stops);
  EXPECT_TRUE(programs.count("cc1")) << "cc1's checkpoints were not seen";
  EXPECT_TRUE(programs.count("as")) << "as's checkpoints were not seen";
  std::remove(obj.c_str());
  std::remove(src.c_str());
  ::rmdir(dir.c_str());
}

// -p PID: seed from /proc while the process sits stopped, then follow it.
TEST(Layout, AttachToRunningProcess) {
  TraceHarness h;
  pid_t pid = h.start_untraced(
      {e2e::workload("checkpoints"), "stopfirst", "merge", "mprotect", "mremap", "brk", "thread", "fork"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!e2e::fully_stopped(pid)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the workload never reached its first stop";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  h.attach(pid);
  int stops = 0;
  h.run([&](const Stop& s) {
    stops++;
    expect_maps_match(h, s, "attached");
  });
  EXPECT_EQ(h.exit_status(), 0);
  // stopfirst + merge 1 + mprotect 2 + mremap 3 + brk 2 + thread 2 + fork 2
  EXPECT_EQ(stops, 13);
}

}  // namespace
