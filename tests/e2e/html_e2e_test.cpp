// The timeline page (`vmatrace report --html`) for a real recording: the
// checkpoints workload's merge/mprotect/munmap/brk/fork steps are traced,
// /proc/PID/maps is read at every stop, the page is rendered and opened in
// headless Chromium by tests/html/check_timeline.mjs, which checks the
// layouts, bands, markers, zoom, hover, click (against `replay --maps --at`),
// the process picker and a screenshot. Needs root (BPF), node and Debian's
// chromium; a missing piece fails the test, it never skips.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/syscall_names.h"
#include "e2e_util.h"

namespace {

using e2e::TempDir;

struct Stop {
  pid_t pid = 0;
  uint64_t ts = 0;
  std::string maps;
};

struct Traced {
  std::string rec;
  pid_t root = 0;
  std::vector<Stop> stops;
};

// `vmatrace record -o REC -- checkpoints STEPS...`, resuming every stop of
// the workload and its children after reading /proc/PID/maps.
Traced record_steps(const std::vector<std::string>& steps, const TempDir& dir) {
  Traced t;
  t.rec = dir.file("rec.vmat");
  std::vector<std::string> argv = {e2e::vmatrace_bin(), "record", "-o", t.rec, "--", e2e::workload("checkpoints")};
  argv.insert(argv.end(), steps.begin(), steps.end());
  auto r = e2e::run_resuming_stops(argv, [&](pid_t q) {
    if (!t.root) t.root = q;  // the workload: its first checkpoint comes before any fork
    Stop s;
    s.pid = q;
    s.maps = e2e::read_file("/proc/" + std::to_string(q) + "/maps").value_or("");
    s.ts = e2e::now_ns();
    t.stops.push_back(std::move(s));
  });
  EXPECT_EQ(r.status, 0) << r.err;
  return t;
}

struct MapsLine {
  uint64_t start = 0, end = 0;
  std::string perms, name;
};

std::vector<MapsLine> parse_maps(const std::string& text) {
  std::vector<MapsLine> out;
  for (const auto& l : e2e::split_lines(text)) {
    MapsLine m;
    char perms[8] = {};
    int name_at = 0;
    unsigned long long s = 0, e = 0;
    if (std::sscanf(l.c_str(), "%llx-%llx %7s %*s %*s %*s %n", &s, &e, perms, &name_at) < 3) continue;
    m.start = s;
    m.end = e;
    m.perms = perms;
    if (name_at > 0 && static_cast<size_t>(name_at) <= l.size()) m.name = l.substr(static_cast<size_t>(name_at));
    out.push_back(m);
  }
  return out;
}

std::string hexs(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%" PRIx64, v);
  return b;
}
std::string q(const std::string& s) { return "\"" + vmatrace::escape_json(s) + "\""; }

std::string band(pid_t pid, uint64_t start, uint64_t end, const std::string& perms, uint64_t ts,
                 const std::string& what) {
  return "{\"pid\":" + std::to_string(pid) + ",\"start\":" + q(hexs(start)) + ",\"end\":" + q(hexs(end)) +
         ",\"perms\":" + q(perms) + ",\"ts\":" + q(std::to_string(ts)) + ",\"what\":" + q(what) + "}";
}

std::string marker(pid_t pid, const std::vector<std::string>& kinds, uint64_t lo, uint64_t hi, uint64_t after,
                   uint64_t before, const std::string& what, int min = 1) {
  std::string k;
  for (const auto& s : kinds) k += (k.empty() ? "" : ",") + q(s);
  return "{\"pid\":" + std::to_string(pid) + ",\"kinds\":[" + k + "],\"lo\":" + q(hexs(lo)) + ",\"hi\":" + q(hexs(hi)) +
         ",\"after\":" + q(std::to_string(after)) + ",\"before\":" + q(std::to_string(before)) +
         ",\"what\":" + q(what) + ",\"min\":" + std::to_string(min) + "}";
}

// playwright-core, installed from the committed lock file into the build
// tree (npm ci) the first time, or when the lock file changed.
std::string playwright_modules() {
  namespace fs = std::filesystem;
  const fs::path src = VMATRACE_HTML_TESTS, dst = VMATRACE_HTML_MODULES;
  fs::create_directories(dst);
  auto lock = e2e::read_file(src / "package-lock.json");
  if (!lock) throw std::runtime_error("tests/html/package-lock.json missing");
  bool fresh = e2e::read_file(dst / "package-lock.json") == lock &&
               fs::exists(dst / "node_modules/playwright-core/package.json");
  if (!fresh) {
    fs::copy_file(src / "package.json", dst / "package.json", fs::copy_options::overwrite_existing);
    fs::copy_file(src / "package-lock.json", dst / "package-lock.json", fs::copy_options::overwrite_existing);
    auto r =
        e2e::run_command({"npm", "ci", "--no-audit", "--no-fund", "--prefix", dst.string()}, std::chrono::seconds(300));
    if (r.status != 0)
      throw std::runtime_error("npm ci in " + dst.string() + " failed (status " + std::to_string(r.status) +
                               "; install nodejs npm, scripts/setup.sh): " + r.err);
  }
  return dst.string();
}

TEST(HtmlTimelineE2e, PageShowsTheRecordedOperationsWhereAndWhenTheyHappened) {
  TempDir dir;
  Traced t = record_steps({"merge", "mprotect", "munmap", "brk", "fork"}, dir);
  std::vector<Stop> parent, child;
  for (const auto& s : t.stops) (s.pid == t.root ? parent : child).push_back(s);
  // merge, mprotect x2, munmap x2, brk x2, fork (after the child's)
  ASSERT_EQ(parent.size(), 8u) << "stops of the workload";
  ASSERT_EQ(child.size(), 1u) << "the forked child's stop";

  // The region: after mprotect its middle three pages are the only
  // anonymous r--p VMA of three pages, between rw-p ones of 3 and 4.
  uint64_t page = 4096, region = 0;
  for (const auto& m : parse_maps(parent[1].maps))
    if (m.perms == "r--p" && m.name.empty() && m.end - m.start == 3 * page) region = m.start - 3 * page;
  ASSERT_NE(region, 0u) << parent[1].maps;
  std::optional<MapsLine> heap;
  for (const auto& m : parse_maps(parent[5].maps))
    if (m.name == "[heap]") heap = m;
  ASSERT_TRUE(heap) << parent[5].maps;

  const std::string html = dir.file("timeline.html");
  auto r = e2e::run_command({e2e::vmatrace_bin(), "report", t.rec, "--html", html});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_NE(r.err.find("2 processes"), std::string::npos) << r.err;

  const uint64_t end = region + 10 * page;
  std::vector<std::string> bands = {
      band(t.root, region, end, "rw-p", parent[0].ts, "ten merged pages"),
      band(t.root, region, region + 3 * page, "rw-p", parent[1].ts, "below the mprotect"),
      band(t.root, region + 3 * page, region + 6 * page, "r--p", parent[1].ts, "the mprotected middle"),
      band(t.root, region + 6 * page, end, "rw-p", parent[1].ts, "above the mprotect"),
      band(t.root, region, end, "rw-p", parent[2].ts, "merged back"),
      band(t.root, heap->start, heap->end, "rw-p", parent[5].ts, "the grown heap"),
  };
  std::vector<std::string> markers = {
      marker(t.root, {"vma_merge"}, region, end, 0, parent[0].ts, "nine mmaps merging", 9),
      marker(t.root, {"vma_split"}, region, end, parent[0].ts, parent[1].ts, "mprotect splitting"),
      marker(t.root, {"vma_merge"}, region, end, parent[1].ts, parent[2].ts, "mprotect merging back"),
      marker(t.root, {"vma_shrink", "vma_split", "vma_remove"}, region, end, parent[2].ts, parent[3].ts,
             "munmap of the head"),
      marker(t.root, {"vma_split"}, region, end, parent[3].ts, parent[4].ts, "munmap splitting the middle"),
      marker(t.root, {"vma_expand", "vma_new"}, heap->start, heap->end, parent[4].ts, parent[5].ts, "brk growing"),
      marker(t.root, {"vma_shrink", "vma_remove"}, heap->start, heap->end, parent[5].ts, parent[6].ts, "brk shrinking"),
  };
  auto stops_json = [](const std::vector<Stop>& v) {
    std::string s;
    for (const auto& x : v)
      s += std::string(s.empty() ? "" : ",") + "{\"ts\":" + q(std::to_string(x.ts)) + ",\"maps\":" + q(x.maps) + "}";
    return s;
  };
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  const std::string screenshot = std::string(VMATRACE_HTML_MODULES) + "/timeline-e2e.png";
  std::string expect = "{\"html\":" + q(html) + ",\"recording\":" + q(t.rec) +
                       ",\"vmatrace\":" + q(e2e::vmatrace_bin()) + ",\"screenshot\":" + q(screenshot) +
                       ",\"processes\":[{\"pid\":" + std::to_string(t.root) + ",\"stops\":[" + stops_json(parent) +
                       "]},{\"pid\":" + std::to_string(child[0].pid) + ",\"stops\":[" + stops_json(child) +
                       "]}],\"bands\":[" + join(bands) + "],\"markers\":[" + join(markers) +
                       "],\"hover\":" + band(t.root, region, end, "rw-p", parent[0].ts, "hover") + "}";
  const std::string expect_path = dir.file("expect.json");
  e2e::write_file(expect_path, expect);

  std::string modules = playwright_modules();
  auto checks =
      e2e::run_command({"node", std::string(VMATRACE_HTML_TESTS) + "/check_timeline.mjs", modules, expect_path},
                       std::chrono::seconds(120));
  EXPECT_EQ(checks.status, 0) << "page checks failed (status " << checks.status
                              << "; 127: node missing, install nodejs npm chromium, scripts/setup.sh)\n"
                              << checks.out << checks.err;
  std::fputs(checks.out.c_str(), stdout);  // the checks, for the log
  EXPECT_NE(checks.out.find("all checks passed"), std::string::npos) << checks.out;
  // A run that checked nothing passes nothing.
  size_t oks = 0;
  for (const auto& l : e2e::split_lines(checks.out)) oks += l.rfind("ok - ", 0) == 0;
  EXPECT_GE(oks, 40u) << checks.out;
  EXPECT_TRUE(std::filesystem::exists(screenshot));
}

// The malloc growth view: mallocgrowth writes down each growth step (call
// site function, allocator, mechanism, pointer); check_malloc.mjs checks
// the panel lists those call sites ranked by bytes and that each step has
// a marker on the VMA holding its pointer, naming its call site on hover.
TEST(HtmlTimelineE2e, MallocPanelAndMarkersNameTheWorkloadsCallSites) {
  TempDir dir;
  const std::string rec = dir.file("rec.vmat"), steps_file = dir.file("steps"), html = dir.file("malloc.html");
  auto rr =
      e2e::run_command({e2e::vmatrace_bin(), "record", "-o", rec, "--", e2e::workload("mallocgrowth"), steps_file});
  ASSERT_EQ(rr.status, 0) << rr.err;
  std::string steps;
  size_t n = 0;
  for (const auto& l : e2e::split_lines(e2e::read_file(steps_file).value_or(""))) {
    std::istringstream in(l);
    std::string tag, fn, alloc, via, ptr;
    in >> tag >> fn >> alloc >> via >> ptr;
    if (tag != "step") continue;
    n++;
    steps += std::string(steps.empty() ? "" : ",") + "{\"function\":" + q(fn) + ",\"allocator\":" + q(alloc) +
             ",\"via\":" + q(via) + ",\"ptr\":" + q(ptr.substr(ptr.rfind('x') + 1)) + "}";
  }
  ASSERT_EQ(n, 8u) << "steps written by tests/workloads/mallocgrowth.c";
  auto r = e2e::run_command({e2e::vmatrace_bin(), "report", rec, "--html", html});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string expect = "{\"html\":" + q(html) + ",\"comm\":\"mallocgrowth\",\"steps\":[" + steps + "]}";
  const std::string expect_path = dir.file("expect.json");
  e2e::write_file(expect_path, expect);

  std::string modules = playwright_modules();
  auto checks = e2e::run_command({"node", std::string(VMATRACE_HTML_TESTS) + "/check_malloc.mjs", modules, expect_path},
                                 std::chrono::seconds(120));
  EXPECT_EQ(checks.status, 0) << "page checks failed (status " << checks.status << ")\n" << checks.out << checks.err;
  std::fputs(checks.out.c_str(), stdout);
  EXPECT_NE(checks.out.find("all checks passed"), std::string::npos) << checks.out;
  size_t oks = 0;
  for (const auto& l : e2e::split_lines(checks.out)) oks += l.rfind("ok - ", 0) == 0;
  EXPECT_GE(oks, 50u) << checks.out;
}

TEST(HtmlTimelineE2e, BadOutputPathIsOneClearLine) {
  TempDir dir;
  Traced t = record_steps({"merge"}, dir);
  auto r = e2e::run_command({e2e::vmatrace_bin(), "report", t.rec, "--html", dir.file("no/such/dir/x.html")});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto none = e2e::run_command({e2e::vmatrace_bin(), "report", dir.file("missing.vmat"), "--html", dir.file("x.html")});
  EXPECT_NE(none.status, 0);
  EXPECT_EQ(std::count(none.err.begin(), none.err.end(), '\n'), 1) << none.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.html")));
}

}  // namespace

TEST(HtmlTimelineE2e, PageLinksToThePerfettoTraceWrittenWithIt) {
  TempDir dir;
  const std::string rec = dir.file("storm.vmat");
  auto r = e2e::run_command({e2e::vmatrace_bin(), "record", "-o", rec, "--", e2e::workload("storm"), "200"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::filesystem::create_directory(dir.file("traces"));
  const std::string page = dir.file("page.html");
  auto both = e2e::run_command(
      {e2e::vmatrace_bin(), "report", rec, "--html", page, "--perfetto", dir.file("traces/storm.pftrace")});
  ASSERT_EQ(both.status, 0) << both.err;
  EXPECT_GT(std::filesystem::file_size(dir.file("traces/storm.pftrace")), 0u);
  auto body = e2e::read_file(page);
  ASSERT_TRUE(body);
  // Relative to the page: the two files travel together.
  EXPECT_NE(body->find("\"perfetto\":\"traces/storm.pftrace\""), std::string::npos);
  EXPECT_NE(body->find("id=\"perfetto\""), std::string::npos);
  // Without --perfetto, no link.
  const std::string alone = dir.file("alone.html");
  ASSERT_EQ(e2e::run_command({e2e::vmatrace_bin(), "report", rec, "--html", alone}).status, 0);
  auto body2 = e2e::read_file(alone);
  ASSERT_TRUE(body2);
  EXPECT_NE(body2->find("\"perfetto\":\"\""), std::string::npos);
}
