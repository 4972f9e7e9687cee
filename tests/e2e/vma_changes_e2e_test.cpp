// VMA change events (core/vma_changes.h) on a real process: the checkpoints
// workload's steps, recorded, replayed, and the changes under each event
// checked against what the kernel did (what /proc showed at the stops).

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::TempDir;

struct Traced {
  std::string replay;                  // `vmatrace replay` text
  std::vector<std::string> proc_maps;  // /proc/PID/maps at each stop
  std::vector<pid_t> pids;             // who stopped
  std::vector<uint64_t> ts;            // when (CLOCK_MONOTONIC, while stopped)
  std::vector<uint64_t> smaps_kib;     // sum of /proc/PID/smaps Size
  std::string rec;
};

uint64_t smaps_size_kib(pid_t pid) {
  uint64_t sum = 0;
  for (const auto& l : e2e::split_lines(e2e::read_file("/proc/" + std::to_string(pid) + "/smaps").value_or(""))) {
    unsigned long long kib = 0;
    if (std::sscanf(l.c_str(), "Size: %llu kB", &kib) == 1) sum += kib;
  }
  return sum;
}

// `vmatrace trace -o REC -- checkpoints STEPS...`, resuming every stop of
// the workload (and its children) after reading its /proc/PID/maps.
Traced trace_steps(const std::vector<std::string>& steps, const TempDir& dir) {
  Traced t;
  const std::string rec = dir.file("rec.vmat");
  std::vector<std::string> argv = {e2e::vmatrace_bin(), "trace", "-o", rec, "--", e2e::workload("checkpoints")};
  argv.insert(argv.end(), steps.begin(), steps.end());
  auto live = e2e::run_resuming_stops(argv, [&](pid_t q) {
    t.proc_maps.push_back(e2e::read_file("/proc/" + std::to_string(q) + "/maps").value_or(""));
    t.pids.push_back(q);
    t.ts.push_back(e2e::now_ns());
    t.smaps_kib.push_back(smaps_size_kib(q));
  });
  EXPECT_EQ(live.status, 0) << live.err;
  auto r = e2e::run_command({e2e::vmatrace_bin(), "replay", rec});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(live.out, r.out) << "live and replay differ";
  t.replay = r.out;
  t.rec = rec;
  return t;
}

// Each event line with the change lines printed under it.
struct Event {
  std::string line;
  std::vector<std::string> changes;
};

std::vector<Event> events(const std::string& text) {
  std::vector<Event> out;
  for (const auto& l : e2e::split_lines(text)) {
    if (l.rfind("      vma_", 0) == 0) {
      if (!out.empty()) out.back().changes.push_back(l.substr(6));
    } else {
      out.push_back({l, {}});
    }
  }
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

std::string dump(const std::vector<Event>& ev) {
  std::string s;
  for (const auto& e : ev) {
    s += e.line + "\n";
    for (const auto& c : e.changes) s += "      " + c + "\n";
  }
  return s;
}

TEST(VmaChangesE2e, MergeStepGrowsOneVmaAsTheKernelDid) {
  TempDir dir;
  auto t = trace_steps({"merge"}, dir);
  auto ev = events(t.replay);
  // Ten adjacent anonymous pages, MAP_FIXED_NOREPLACE one by one: the first
  // is new, the next nine merge into it (vma_merge_new_range() expands prev).
  int news = 0, merges = 0;
  for (const auto& e : ev) {
    if (e.line.find("mmap(") == std::string::npos || e.line.find("MAP_FIXED_NOREPLACE") == std::string::npos) continue;
    if (e.line.find("4096 [4.0 KiB], PROT_READ|PROT_WRITE") == std::string::npos) continue;
    ASSERT_EQ(e.changes.size(), 1u) << e.line << "\n" << dump(ev);
    if (e.changes[0].rfind("vma_new ", 0) == 0) news++;
    if (e.changes[0].rfind("vma_merge ", 0) == 0) {
      merges++;
      EXPECT_NE(e.changes[0].find(" + #- "), std::string::npos) << "a new range merged: " << e.changes[0];
    }
  }
  EXPECT_EQ(news, 1) << dump(ev);
  EXPECT_EQ(merges, 9) << dump(ev);
  // And the kernel shows one ten-page VMA at the checkpoint.
  ASSERT_FALSE(t.proc_maps.empty());
  bool ten = false;
  for (const auto& l : e2e::split_lines(t.proc_maps[0])) {
    unsigned long long s = 0, e = 0;
    if (std::sscanf(l.c_str(), "%llx-%llx", &s, &e) == 2 && e - s == 10 * 4096 && l.find(" rw-p ") != std::string::npos)
      ten = true;
  }
  EXPECT_TRUE(ten) << t.proc_maps[0];
}

TEST(VmaChangesE2e, MprotectSplitsInThreeThenMergesBack) {
  TempDir dir;
  auto t = trace_steps({"mprotect"}, dir);
  auto ev = events(t.replay);
  bool split3 = false, merge3 = false;
  for (const auto& e : ev) {
    if (e.line.find(" mprotect(") == std::string::npos || e.line.find("[heap]") != std::string::npos) continue;
    for (const auto& c : e.changes) {
      if (c.rfind("vma_split ", 0) == 0 && count(c, ", #") == 2 && c.find(" r--p ") != std::string::npos) split3 = true;
      if (c.rfind("vma_merge ", 0) == 0 && count(c, " + #") == 2) merge3 = true;
    }
  }
  EXPECT_TRUE(split3) << "one vma_split into three pieces\n" << dump(ev);
  EXPECT_TRUE(merge3) << "one vma_merge of three pieces back into one\n" << dump(ev);
}

TEST(VmaChangesE2e, BrkStackAndMremapResizeInPlaceOrMove) {
  TempDir dir;
  auto t = trace_steps({"mremap", "brk", "stack"}, dir);
  auto ev = events(t.replay);
  int heap_expand = 0, heap_shrink = 0, stack_expand = 0, moves = 0, mremap_expand = 0, mremap_shrink = 0;
  for (const auto& e : ev) {
    for (const auto& c : e.changes) {
      bool heap = c.find("[heap]") != std::string::npos, stack = c.find("[stack]") != std::string::npos;
      // do_brk_flags() creates the heap or expands it; shrinking to start_brk
      // removes it (then /proc no longer names it [heap]).
      if (e.line.find(" brk(") != std::string::npos) {
        heap_expand += heap && (c.rfind("vma_expand ", 0) == 0 || c.rfind("vma_new ", 0) == 0);
        heap_shrink += c.rfind("vma_shrink ", 0) == 0 || c.rfind("vma_remove ", 0) == 0;
      }
      if (e.line.find(" fault(") != std::string::npos && stack) stack_expand += c.rfind("vma_expand ", 0) == 0;
      if (e.line.find(" mremap(") != std::string::npos) {
        moves += c.rfind("vma_move ", 0) == 0;
        mremap_expand += c.rfind("vma_expand ", 0) == 0;
        mremap_shrink += c.rfind("vma_shrink ", 0) == 0;
      }
    }
  }
  EXPECT_GE(heap_expand, 1) << dump(ev);
  EXPECT_GE(heap_shrink, 1) << dump(ev);
  EXPECT_GE(stack_expand, 1) << "expand_downwards() of [stack] on a fault below it\n" << dump(ev);
  EXPECT_GE(moves, 1) << dump(ev);
  EXPECT_GE(mremap_expand, 1) << dump(ev);
  EXPECT_GE(mremap_shrink, 1) << dump(ev);
}

TEST(VmaChangesE2e, ExecAndForkBringNewVmas) {
  TempDir dir;
  auto t = trace_steps({"fork"}, dir);
  auto ev = events(t.replay);
  size_t exec_new = 0, fork_new = 0;
  for (const auto& e : ev) {
    if (e.line.find(" exec layout: ") != std::string::npos || e.line.find(" layout: ") != std::string::npos)
      exec_new = std::max(exec_new, e.changes.size());
    if (e.line.find(" fork -> ") != std::string::npos) fork_new = std::max(fork_new, e.changes.size());
  }
  EXPECT_GE(exec_new, 5u) << dump(ev);
  EXPECT_GE(fork_new, 5u) << dump(ev);
}

TEST(VmaChangesE2e, PmapTotalsEqualSmapsSizeAtEveryCheckpoint) {
  TempDir dir;
  auto t = trace_steps({"merge", "mprotect", "munmap", "brk"}, dir);
  ASSERT_FALSE(t.ts.empty());
  for (size_t i = 0; i < t.ts.size(); i++) {
    auto r = e2e::run_command({e2e::vmatrace_bin(), "replay", t.rec, "--pmap", "--at", std::to_string(t.ts[i]), "--pid",
                               std::to_string(t.pids[i])});
    ASSERT_EQ(r.status, 0) << r.err;
    unsigned long long total = 0;
    bool seen = false;
    for (const auto& l : e2e::split_lines(r.out))
      if (std::sscanf(l.c_str(), "  total %llu KiB", &total) == 1) seen = true;
    ASSERT_TRUE(seen) << r.out;
    EXPECT_EQ(total, t.smaps_kib[i]) << "checkpoint " << i << "\n" << r.out << "\n/proc maps:\n" << t.proc_maps[i];
    EXPECT_NE(r.out.find("program text"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("shared-library code"), std::string::npos) << r.out;
  }
}

TEST(VmaChangesE2e, LineageOfTheMergedVmaShowsItsBirthAndMerges) {
  TempDir dir;
  auto t = trace_steps({"merge"}, dir);
  ASSERT_FALSE(t.ts.empty());
  unsigned long long start = 0;
  for (const auto& l : e2e::split_lines(t.proc_maps[0])) {
    unsigned long long s = 0, e = 0;
    if (std::sscanf(l.c_str(), "%llx-%llx", &s, &e) == 2 && e - s == 10 * 4096 && l.find(" rw-p ") != std::string::npos)
      start = s;
  }
  ASSERT_NE(start, 0u) << t.proc_maps[0];
  char addr[32];
  std::snprintf(addr, sizeof(addr), "0x%llx", start + 5 * 4096);
  auto r = e2e::run_command({e2e::vmatrace_bin(), "replay", t.rec, "--lineage", addr, "--at", std::to_string(t.ts[0]),
                             "--pid", std::to_string(t.pids[0])});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.out, " vma_new #"), 1u) << r.out;
  EXPECT_EQ(count(r.out, " vma_merge #"), 9u) << r.out;
  EXPECT_EQ(count(r.out, " mmap "), 10u) << r.out;
}

TEST(VmaChangesE2e, LineageCrossesForkIntoTheParent) {
  TempDir dir;
  auto t = trace_steps({"merge", "fork"}, dir);
  ASSERT_GE(t.pids.size(), 3u);
  const pid_t parent = t.pids[0];
  pid_t child = 0;
  for (pid_t q : t.pids)
    if (q != parent) child = q;
  ASSERT_NE(child, 0) << "the forked child never stopped";
  unsigned long long start = 0;
  for (const auto& l : e2e::split_lines(t.proc_maps[0])) {
    unsigned long long s = 0, e = 0;
    if (std::sscanf(l.c_str(), "%llx-%llx", &s, &e) == 2 && e - s == 10 * 4096 && l.find(" rw-p ") != std::string::npos)
      start = s;
  }
  ASSERT_NE(start, 0u) << t.proc_maps[0];
  char addr[32];
  std::snprintf(addr, sizeof(addr), "0x%llx", start + 5 * 4096);
  // The child's copy (dup_mmap() at fork) links to the parent's VMA, whose
  // history before the fork (one mmap, nine merges) is the child's too.
  auto r = e2e::run_command({e2e::vmatrace_bin(), "replay", t.rec, "--lineage", addr, "--pid", std::to_string(child)});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(" in " + std::to_string(child) + " "), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, " fork "), 1u) << r.out;
  EXPECT_NE(r.out.find("(copy of parent " + std::to_string(parent) + "'s VMA)"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, " vma_new #"), 2u) << "the parent's mmap and the child's copy\n" << r.out;
  EXPECT_EQ(count(r.out, " vma_merge #"), 9u) << r.out;
  // The parent's steps come first, the fork last.
  EXPECT_LT(r.out.find(" vma_merge #"), r.out.find(" fork ")) << r.out;
}

}  // namespace
