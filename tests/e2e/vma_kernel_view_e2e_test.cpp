// The vma family (the kernel's own stores into the VMA tree) against
// inference (the layout model's rules), on the checkpoints workload: the
// merge and split events must match, count and ranges, between the two and
// against the operations the workload is known to do. Runs in whatever mode
// the planner picks here (maple_tree on 6.18; fentry, or kprobe through
// VMATRACE_ATTACH, in the 6.1 VM) and fails if that is no kernel source.

#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "e2e_util.h"

namespace {

using e2e::TempDir;
using Range = std::pair<uint64_t, uint64_t>;

struct Change {
  std::string kind, source, text;  // source "" for inference; text without the source
  std::vector<Range> from, to;
};

struct Event {
  std::string line;
  std::vector<Change> changes;
};

std::vector<Range> ranges_in(const std::string& s) {
  static const std::regex re(R"(#(?:\d+|-) ([0-9a-f]+)-([0-9a-f]+) )");
  std::vector<Range> out;
  for (std::sregex_iterator it(s.begin(), s.end(), re), end; it != end; ++it)
    out.emplace_back(std::stoull((*it)[1], nullptr, 16), std::stoull((*it)[2], nullptr, 16));
  return out;
}

Change parse_change(std::string l) {
  Change c;
  c.kind = l.substr(0, l.find(' '));
  if (!l.empty() && l.back() == ')') {
    auto open = l.rfind("  (");
    if (open != std::string::npos) {
      c.source = l.substr(open + 3, l.size() - open - 4);
      l = l.substr(0, open);
    }
  }
  c.text = l;
  auto arrow = l.find(" -> ");
  if (arrow != std::string::npos) {
    c.from = ranges_in(l.substr(0, arrow) + " ");
    c.to = ranges_in(l.substr(arrow + 4) + " ");
  } else if (c.kind == "vma_new") {
    c.to = ranges_in(l + " ");
  } else {
    c.from = ranges_in(l + " ");
  }
  return c;
}

std::vector<Event> parse(const std::string& text) {
  std::vector<Event> out;
  for (const auto& l : e2e::split_lines(text)) {
    if (l.rfind("      vma_", 0) == 0) {
      if (!out.empty()) out.back().changes.push_back(parse_change(l.substr(6)));
    } else {
      out.push_back({l, {}});
    }
  }
  return out;
}

bool merge_or_split(const Change& c) { return c.kind == "vma_merge" || c.kind == "vma_split"; }

// "event line | change" for every merge and split, in stream order.
std::vector<std::string> merges_and_splits(const std::vector<Event>& ev) {
  std::vector<std::string> out;
  for (const auto& e : ev)
    for (const auto& c : e.changes)
      if (merge_or_split(c)) out.push_back(e.line + " | " + c.text);
  return out;
}

// The same without addresses (two runs place mappings differently): kind
// and the page counts of each range.
std::vector<std::string> shapes(const std::vector<Event>& ev) {
  std::vector<std::string> out;
  auto pages = [](const std::vector<Range>& rs) {
    std::string s;
    for (const auto& [a, b] : rs) s += " " + std::to_string((b - a) / 4096);
    return s;
  };
  for (const auto& e : ev)
    for (const auto& c : e.changes)
      if (merge_or_split(c)) out.push_back(c.kind + pages(c.from) + " ->" + pages(c.to));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

uint64_t hex_after(const std::string& line, const std::string& what) {
  auto p = line.find(what);
  return p == std::string::npos ? 0 : std::stoull(line.substr(p + what.size()), nullptr, 16);
}

const std::vector<std::string> kSteps = {"merge", "mprotect", "munmap", "mremap", "brk"};
// Every step the checkpoints workload knows (file and shared mappings, an
// unlinked file, stack growth, a thread stack and its guard, dlopen/dlclose,
// MADV_DONTFORK, mlock/mlockall, pkey_mprotect, SysV shm, fork).
const std::vector<std::string> kAllSteps = {"merge",  "mprotect", "munmap", "mremap", "file",   "deleted",
                                            "shanon", "brk",      "stack",  "thread", "dlopen", "dontfork",
                                            "mlock",  "pkey",     "shm",    "fork"};

std::string record(const TempDir& dir, const std::string& name, const std::vector<std::string>& extra,
                   const std::vector<std::string>& steps = kSteps) {
  std::string rec = dir.file(name);
  std::vector<std::string> argv = {e2e::vmatrace_bin(), "trace", "-o", rec};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("--");
  argv.push_back(e2e::workload("checkpoints"));
  argv.insert(argv.end(), steps.begin(), steps.end());
  auto r = e2e::run_resuming_stops(argv);
  EXPECT_EQ(r.status, 0) << e2e::describe(r);
  return rec;
}

std::string replay(const std::vector<std::string>& args) {
  auto r = e2e::run_command(e2e::vmatrace_argv(args));
  EXPECT_EQ(r.status, 0) << e2e::describe(r);
  return r.out;
}

// The source the vma family's records should carry, from the planner's
// decision as `vmatrace features` shows it (which honours VMATRACE_ATTACH).
std::string planned_vma_source() {
  auto r = e2e::run_command(e2e::vmatrace_argv({"features"}));
  EXPECT_EQ(r.status, 0) << e2e::describe(r);
  std::smatch m;
  static const std::regex row(R"((^|\n)vma +([a-z_]+))");
  if (!std::regex_search(r.out, m, row)) return "?";
  return m[2] == "raw_tracepoint" ? "maple_tree" : std::string(m[2]);
}

TEST(VmaKernelView, MergesAndSplitsMatchInferenceAndTheKnownOperations) {
  const std::string want_source = planned_vma_source();
  TempDir dir;
  const std::string rec = record(dir, "kernel.vmat", {});
  auto kernel = parse(replay({"replay", rec}));
  auto inferred = parse(replay({"replay", "--infer-vma-changes", rec}));

  // Every change under a syscall came from the kernel's stores, never from
  // inference: the vma family attached (a kernel without any source fails here).
  size_t from_kernel = 0;
  for (const auto& e : kernel) {
    bool syscall = e.line.find(" mmap(") != std::string::npos || e.line.find(" mprotect(") != std::string::npos ||
                   e.line.find(" munmap(") != std::string::npos || e.line.find(" mremap(") != std::string::npos;
    if (!syscall) continue;
    for (const auto& c : e.changes) {
      EXPECT_NE(c.source, "") << "a syscall's change from inference in the kernel-view run: " << e.line << "\n  "
                              << c.text;
      EXPECT_EQ(c.source, want_source) << "the planned source: " << e.line << "\n  " << c.text;
      from_kernel += c.source == "maple_tree" || c.source == "fentry" || c.source == "kprobe";
    }
  }
  EXPECT_GT(from_kernel, 20u);

  // The two views of the same events agree on every merge and split.
  auto k = merges_and_splits(kernel), i = merges_and_splits(inferred);
  EXPECT_EQ(k, i) << e2e::diff_lines(join(k), join(i), "kernel", "inference");

  // And both match what the workload did.
  int page_merges = 0, splits3 = 0, merges3 = 0;
  std::vector<size_t> munmap_split_pieces;
  for (const auto& e : kernel) {
    bool page_mmap = e.line.find(" mmap(") != std::string::npos &&
                     e.line.find("4096 [4.0 KiB], PROT_READ|PROT_WRITE") != std::string::npos &&
                     e.line.find("MAP_FIXED_NOREPLACE") != std::string::npos;
    bool mprotect3 =
        e.line.find(" mprotect(") != std::string::npos && e.line.find(", 12288 [12 KiB], ") != std::string::npos;
    for (const auto& c : e.changes) {
      if (!merge_or_split(c)) continue;
      if (page_mmap) {
        // vma_merge_new_range(): prev expanded over the new page.
        ASSERT_EQ(c.kind, "vma_merge") << e.line;
        ASSERT_EQ(c.from.size(), 2u) << c.text;
        ASSERT_EQ(c.to.size(), 1u) << c.text;
        EXPECT_EQ(c.from[0].second, c.from[1].first) << c.text;
        EXPECT_EQ(c.from[1].second - c.from[1].first, 4096u) << c.text;
        EXPECT_EQ(c.to[0], Range(c.from[0].first, c.from[1].second)) << c.text;
        page_merges++;
      } else if (mprotect3) {
        const uint64_t a = hex_after(e.line, "mprotect(0x"), r = a - 3 * 4096;
        const std::vector<Range> three = {{r, a}, {a, a + 3 * 4096}, {a + 3 * 4096, r + 10 * 4096}};
        if (c.kind == "vma_split") {
          EXPECT_EQ(c.from, std::vector<Range>{Range(r, r + 10 * 4096)}) << c.text;
          EXPECT_EQ(c.to, three) << c.text;
          splits3++;
        } else {
          EXPECT_EQ(c.from, three) << c.text;
          EXPECT_EQ(c.to, std::vector<Range>{Range(r, r + 10 * 4096)}) << c.text;
          merges3++;
        }
      } else if (e.line.find(" munmap(") != std::string::npos &&
                 e.line.find(", 4096 [4.0 KiB])") != std::string::npos && c.kind == "vma_split") {
        const uint64_t a = hex_after(e.line, "munmap(0x");
        bool piece = false;
        for (const auto& t : c.to) piece |= t == Range(a, a + 4096);
        EXPECT_TRUE(piece) << "the unmapped page is a piece of the split: " << c.text;
        munmap_split_pieces.push_back(c.to.size());
      }
    }
  }
  EXPECT_EQ(page_merges, 9) << join(k);
  EXPECT_EQ(splits3, 1) << join(k);
  EXPECT_EQ(merges3, 1) << join(k);
  // munmap of the head page: __split_vma() leaves the head in the old VMA
  // and the rest in a new one, then the head goes (vms_gather_munmap_vmas()):
  // a split in two. Of a middle page: a split in three.
  EXPECT_EQ(munmap_split_pieces, (std::vector<size_t>{2, 3})) << join(k);
}

TEST(VmaKernelView, LiveInferenceRunHasTheSameMergesAndSplits) {
  TempDir dir;
  auto kernel = parse(replay({"replay", record(dir, "kernel.vmat", {})}));
  auto inferred = parse(replay({"replay", record(dir, "inference.vmat", {"--attach", "vma=none"})}));
  for (const auto& e : inferred)
    for (const auto& c : e.changes) EXPECT_EQ(c.source, "") << "vma=none reports only inference: " << c.text;
  auto k = shapes(kernel), i = shapes(inferred);
  EXPECT_EQ(k, i) << e2e::diff_lines(join(k), join(i), "kernel", "inference");
}

// All the workload's steps in one process, in the planned mode: every
// syscall's changes come from the kernel's stores, each VMA the stores
// bound is one the model holds with the same bounds (replay reports any
// disagreement on stderr), and kernel and inference agree on every merge
// and split of the same events.
TEST(VmaKernelView, EveryCheckpointStepAgreesWithInference) {
  const std::string want_source = planned_vma_source();
  TempDir dir;
  const std::string rec = record(dir, "all.vmat", {}, kAllSteps);
  auto r = e2e::run_command(e2e::vmatrace_argv({"replay", rec}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  EXPECT_EQ(r.err.find("kernel view:"), std::string::npos) << r.err;
  auto kernel = parse(r.out);
  auto inferred = parse(replay({"replay", "--infer-vma-changes", rec}));
  size_t from_kernel = 0, syscalls = 0;
  for (const auto& e : kernel) {
    bool syscall = false;
    for (const char* s : {" mmap(", " mprotect(", " munmap(", " mremap(", " brk(", " mlock(", " munlock(", " mlock2(",
                          " mlockall(", " munlockall(", " pkey_mprotect(", " shmat(", " shmdt("})
      syscall |= e.line.find(s) != std::string::npos;
    syscalls += syscall;
    for (const auto& c : e.changes) {
      if (!syscall) continue;
      EXPECT_EQ(c.source, want_source) << e.line << "\n  " << c.text;
      from_kernel++;
    }
  }
  EXPECT_GT(syscalls, 50u);
  EXPECT_GT(from_kernel, 50u);
  auto k = merges_and_splits(kernel), i = merges_and_splits(inferred);
  EXPECT_GT(k.size(), 20u);
  EXPECT_EQ(k, i) << e2e::diff_lines(join(k), join(i), "kernel", "inference");

  // The known operations of the mlock and shm steps, in the kernel's view:
  // mlock/mlock2 of a 10-page VMA's middle split it in three, munlock and
  // mlockall (which drops the middle's VM_LOCKONFAULT) merge the three, and
  // shmdt of an attach mprotect split in three removes all three pieces.
  auto shape_of = [&](const char* call) {
    std::string out;
    for (const auto& e : kernel)
      if (e.line.find(call) != std::string::npos)
        for (const auto& c : e.changes)
          if (merge_or_split(c) || c.kind == "vma_remove")
            out += c.kind + " " + std::to_string(c.from.size()) + "->" + std::to_string(c.to.size()) + "; ";
    return out;
  };
  EXPECT_EQ(shape_of(" mlock("), "vma_split 1->3; ") << join(k);
  EXPECT_EQ(shape_of(" mlock2("), "vma_split 1->3; ") << join(k);
  EXPECT_EQ(shape_of(" munlock("), "vma_merge 3->1; ") << join(k);
  EXPECT_EQ(shape_of(" mlockall("), "vma_merge 3->1; ") << join(k);
  EXPECT_EQ(shape_of(" shmdt("), "vma_remove 1->0; vma_remove 1->0; vma_remove 1->0; vma_remove 1->0; ") << join(k);
}

}  // namespace
