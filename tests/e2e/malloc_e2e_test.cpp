// malloc growth attribution (issue #6) against the workloads' own knowledge:
// tests/workloads/mallocgrowth.c and newgrowth.cpp write, for each growth
// they cause, the function, the allocator, the mechanism, the pointer they
// got and the size (and for brk the break before and after). Every such
// step must appear as exactly one malloc_growth event with that allocator,
// mechanism and call site, a byte count that matches, and a resulting VMA
// holding the pointer; the direct mmap must not be attributed. Live output
// equals the replay of the recording made in the same run, and
// `report --malloc` ranks the same growths.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_util.h"

using e2e::describe;
using e2e::TempDir;

namespace {

constexpr uint64_t kPage = 4096;

struct Step {
  std::string function, allocator, via;  // allocator "-": not an allocator
  uint64_t ptr = 0, size = 0, brk_before = 0, brk_after = 0;
};

std::vector<Step> read_steps(const std::string& path) {
  std::vector<Step> steps;
  auto text = e2e::read_file(path);
  if (!text) return steps;
  for (const auto& line : e2e::split_lines(*text)) {
    std::istringstream in(line);
    std::string tag, ptr, b0, b1;
    Step s;
    in >> tag >> s.function >> s.allocator >> s.via >> ptr >> s.size >> b0 >> b1;
    if (tag != "step") continue;
    if (s.allocator == "operator_new") s.allocator = "operator new";
    s.ptr = std::stoull(ptr, nullptr, 16);
    s.brk_before = std::stoull(b0, nullptr, 16);
    s.brk_after = std::stoull(b1, nullptr, 16);
    steps.push_back(s);
  }
  return steps;
}

struct Growth {
  std::optional<std::string> allocator;
  std::string via, call_site;
  uint64_t bytes = 0, addr = 0, vma_start = 0, vma_end = 0;
  std::string line;
};

// The malloc_growth objects of a --json stream (the fields the tests need).
std::vector<Growth> growths(const std::string& out) {
  static const std::regex alloc_re("\"allocator\":(null|\"([^\"]*)\")"), via_re("\"via\":\"([a-z]+)\""),
      bytes_re("\"bytes\":([0-9]+)"), addr_re("\"addr\":\"0x([0-9a-f]+)\""),
      vma_re("\"vma\":\\{\"start\":\"0x([0-9a-f]+)\",\"end\":\"0x([0-9a-f]+)\""),
      site_re("\"call_site\":\\{\"pc\":\"[^\"]*\",\"function\":\"([^\"]*)\"");
  std::vector<Growth> v;
  for (const auto& l : e2e::split_lines(out)) {
    if (l.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
    Growth g;
    g.line = l;
    std::smatch m;
    if (std::regex_search(l, m, alloc_re) && m[1] != "null") g.allocator = m[2];
    if (std::regex_search(l, m, via_re)) g.via = m[1];
    if (std::regex_search(l, m, bytes_re)) g.bytes = std::stoull(m[1]);
    if (std::regex_search(l, m, addr_re)) g.addr = std::stoull(m[1], nullptr, 16);
    if (std::regex_search(l, m, vma_re))
      g.vma_start = std::stoull(m[1], nullptr, 16), g.vma_end = std::stoull(m[2], nullptr, 16);
    if (std::regex_search(l, m, site_re)) g.call_site = m[1];
    v.push_back(g);
  }
  return v;
}

std::string dump(const std::vector<Growth>& gs) {
  std::string s;
  for (const auto& g : gs) s += g.line.substr(0, 600) + "\n";
  return s;
}

// Every step is one growth with the right allocator, mechanism, call site
// and size; nothing else is attributed to an allocator from these functions.
void check_steps(const std::vector<Step>& steps, const std::vector<Growth>& gs) {
  for (const auto& s : steps) {
    SCOPED_TRACE(s.function + " " + s.allocator + " " + s.via);
    std::optional<std::string> want = s.allocator == "-" ? std::nullopt : std::optional<std::string>(s.allocator);
    std::vector<const Growth*> hits;
    for (const auto& g : gs)
      if (g.call_site == s.function && g.allocator == want && g.via == s.via) hits.push_back(&g);
    ASSERT_EQ(hits.size(), 1u) << "growths:\n" << dump(gs);
    const Growth& g = *hits[0];
    if (s.brk_before) {  // brk, or a thread arena's mprotect: the workload measured the heap's end
      EXPECT_EQ(g.bytes, s.brk_after - s.brk_before) << g.line;
      EXPECT_EQ(g.addr, s.brk_before) << g.line;
      EXPECT_EQ(g.vma_end, s.brk_after) << "the heap VMA ends where the growth ends\n" << g.line;
    } else {
      // glibc adds its chunk header and rounds to pages.
      EXPECT_GE(g.bytes, s.size) << g.line;
      EXPECT_LE(g.bytes, s.size + 2 * kPage) << g.line;
      EXPECT_LE(g.addr, s.ptr) << g.line;
      EXPECT_GE(g.addr + g.bytes, s.ptr + (s.via == "mremap" ? 0 : s.size)) << g.line;
    }
    EXPECT_LE(g.vma_start, s.ptr) << "the resulting VMA holds the pointer\n" << g.line;
    EXPECT_GT(g.vma_end, s.ptr) << g.line;
  }
}

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }

TEST(Malloc, EveryGrowthAttributedLiveAndReplayed) {
  TempDir dir;
  std::string steps_file = dir.file("steps"), rec = dir.file("rec.vmat");
  auto live = e2e::run_command(
      vm({"trace", "--json", "--faults=off", "-o", rec, "--", e2e::workload("mallocgrowth"), steps_file}));
  ASSERT_EQ(live.status, 0) << describe(live);
  auto steps = read_steps(steps_file);
  ASSERT_EQ(steps.size(), 8u) << "steps written by tests/workloads/mallocgrowth.c";
  auto gs = growths(live.out);
  check_steps(steps, gs);
  // Never misattributed: the direct mmap is "not from an allocator".
  for (const auto& g : gs) {
    if (g.call_site == "direct_mmap") {
      EXPECT_FALSE(g.allocator) << g.line;
    }
  }
  // The thread's arena: its creation made the first part of its PROT_NONE
  // reservation writable (the reservation itself is not a growth).
  bool arena_created = false;
  for (const auto& g : gs) {
    if (g.call_site == "thread_first_malloc" && g.allocator == "malloc" && g.via == "mprotect") arena_created = true;
    EXPECT_FALSE(g.via == "mmap" && g.bytes >= (64u << 20)) << "a PROT_NONE reservation is not growth\n" << g.line;
  }
  EXPECT_TRUE(arena_created) << dump(gs);
  // The thread's stack (mmap PROT_NONE, then mprotect) is growth, but no malloc's.
  bool thread_stack = false;
  for (const auto& g : gs)
    if (g.call_site.starts_with("pthread_create") && !g.allocator && g.via == "mprotect") thread_stack = true;
  EXPECT_TRUE(thread_stack) << "pthread_create's stack is reported as not from an allocator\n" << dump(gs);

  auto rep = e2e::run_command(vm({"replay", "--json", rec}));
  ASSERT_EQ(rep.status, 0) << describe(rep);
  EXPECT_EQ(live.out, rep.out) << e2e::diff_lines(live.out, rep.out, "live", "replay");
}

TEST(Malloc, TextOutputNamesCallSiteAndLine) {
  TempDir dir;
  std::string steps_file = dir.file("steps");
  auto r = e2e::run_command(vm({"trace", "--faults=off", "--", e2e::workload("mallocgrowth"), steps_file}));
  ASSERT_EQ(r.status, 0) << describe(r);
  // "malloc_growth calloc via mmap +4.0 MiB => ... from large_calloc+0x.. (mallocgrowth.c:NN)"
  std::regex calloc_line(
      R"(malloc_growth calloc via mmap \+4\.0 MiB => 0x[0-9a-f]+-0x[0-9a-f]+ rw-p from large_calloc\+0x[0-9a-f]+ \(mallocgrowth\.c:[0-9]+\))");
  EXPECT_TRUE(std::regex_search(r.out, calloc_line)) << r.out.substr(0, 20000);
  EXPECT_NE(r.err.find("malloc growth:"), std::string::npos) << "summary at the end\n" << r.err;
}

TEST(Malloc, CxxOperatorNewNamesDemangledCaller) {
  TempDir dir;
  std::string steps_file = dir.file("steps");
  auto live = e2e::run_command(vm({"trace", "--json", "--faults=off", "--", e2e::workload("newgrowth"), steps_file}));
  ASSERT_EQ(live.status, 0) << describe(live);
  auto steps = read_steps(steps_file);
  ASSERT_EQ(steps.size(), 1u);
  check_steps(steps, growths(live.out));
}

TEST(Malloc, ReportRanksCallSites) {
  TempDir dir;
  std::string steps_file = dir.file("steps"), rec = dir.file("rec.vmat");
  auto r = e2e::run_command(vm({"record", "-o", rec, "--", e2e::workload("mallocgrowth"), steps_file}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto steps = read_steps(steps_file);
  ASSERT_EQ(steps.size(), 8u);
  auto rep = e2e::run_command(vm({"report", rec, "--malloc", "--json"}));
  ASSERT_EQ(rep.status, 0) << describe(rep);
  // The largest single growth is at least the realloc's 6 MiB (the thread's
  // 8 MiB stack, made writable by mprotect in pthread_create, is larger and
  // not from an allocator).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      rep.out, m,
      std::regex(
          "\"largest\":\\{\"pid\":[0-9]+,\"tid\":[0-9]+,\"allocator\":[^,]*,\"via\":\"[a-z]+\",\"bytes\":([0-9]+)")))
      << rep.out;
  EXPECT_GE(std::stoull(m[1]), 6ull << 20) << rep.out;
  EXPECT_NE(rep.out.find("{\"allocator\":null,\"function\":\"pthread_create"), std::string::npos)
      << "thread stacks are growth, not an allocator's\n"
      << rep.out;
  // Sites are ranked by bytes: the realloc site (6 MiB) before calloc (4 MiB)
  // before posix_memalign (3 MiB) before the heap's brk growth.
  auto pos = [&](const std::string& alloc, const std::string& fn) {
    return rep.out.find("{\"allocator\":\"" + alloc + "\",\"function\":\"" + fn + "\"");
  };
  size_t re = pos("realloc", "realloc_to_8mib"), ca = pos("calloc", "large_calloc"),
         pm = pos("posix_memalign", "large_posix_memalign"), sm = pos("malloc", "small_mallocs_grow_heap");
  ASSERT_NE(re, std::string::npos) << rep.out;
  ASSERT_NE(ca, std::string::npos) << rep.out;
  ASSERT_NE(pm, std::string::npos) << rep.out;
  ASSERT_NE(sm, std::string::npos) << rep.out;
  EXPECT_LT(re, ca);
  EXPECT_LT(ca, pm);
  EXPECT_LT(pm, sm);
  const Step* heap = nullptr;
  for (const auto& s : steps)
    if (s.via == "brk") heap = &s;
  ASSERT_TRUE(heap);
  std::string brk = "\"function\":\"small_mallocs_grow_heap\",\"location\":\"";
  size_t at = rep.out.find(brk);
  ASSERT_NE(at, std::string::npos);
  std::string want = "\"brk\":{\"count\":1,\"bytes\":" + std::to_string(heap->brk_after - heap->brk_before) + "}";
  EXPECT_NE(rep.out.find(want, at), std::string::npos) << want << "\n" << rep.out;
  // The direct mmap is a site without an allocator.
  EXPECT_NE(rep.out.find("{\"allocator\":null,\"function\":\"direct_mmap\""), std::string::npos) << rep.out;

  auto text = e2e::run_command(vm({"report", rec, "--malloc"}));
  ASSERT_EQ(text.status, 0) << describe(text);
  EXPECT_NE(text.out.find("realloc  realloc_to_8mib (mallocgrowth.c:"), std::string::npos) << text.out;
}

TEST(Malloc, OffRecordsNoStacks) {
  TempDir dir;
  std::string steps_file = dir.file("steps"), rec = dir.file("rec.vmat");
  auto r = e2e::run_command(vm({"record", "--malloc=off", "-o", rec, "--", e2e::workload("mallocgrowth"), steps_file}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto rep = e2e::run_command(vm({"report", rec, "--malloc"}));
  EXPECT_NE(rep.status, 0) << describe(rep);
  EXPECT_NE(rep.err.find("--malloc=stack"), std::string::npos) << describe(rep);
  auto replay = e2e::run_command(vm({"replay", "--json", rec}));
  ASSERT_EQ(replay.status, 0) << describe(replay);
  EXPECT_TRUE(growths(replay.out).empty());
}

// Small anonymous mmaps (below glibc's mmap threshold) get no stack: an
// mmap storm pays nothing for malloc attribution.
TEST(Malloc, SmallMmapStormRecordsNoStacks) {
  TempDir dir;
  std::string rec = dir.file("storm.vmat"), rec2 = dir.file("growth.vmat");
  auto r = e2e::run_command(
      vm({"record", "-o", rec, "--", "sh", "-c", "exec \"$0\" 2000 >/dev/null", e2e::workload("storm")}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto info = e2e::run_command(vm({"info", "--json", rec}));
  ASSERT_EQ(info.status, 0) << describe(info);
  EXPECT_NE(info.out.find("\"syscall\":"), std::string::npos) << info.out;
  // Only the heap's few brk growths (sh's and stdio's mallocs), not 2000 mmaps.
  std::smatch m;
  uint64_t stacks = 0;
  if (std::regex_search(info.out, m, std::regex("\"user_stack\":([0-9]+)"))) stacks = std::stoull(m[1]);
  EXPECT_LT(stacks, 20u) << info.out;
  // The same counter does see the growth workload's stacks.
  auto g = e2e::run_command(vm({"record", "-o", rec2, "--", e2e::workload("mallocgrowth"), dir.file("steps")}));
  ASSERT_EQ(g.status, 0) << describe(g);
  auto info2 = e2e::run_command(vm({"info", "--json", rec2}));
  EXPECT_NE(info2.out.find("\"user_stack\":"), std::string::npos) << info2.out;
}

}  // namespace
