// The smaller fidelity items of issue #15, each against ground truth:
// - the first heap growth of a process is unwound and attributed like the
//   rest (the workload knows its call site);
// - jemalloc's growth (Debian's libjemalloc2, preloaded into a workload)
//   is attributed to the workload's call site, not "not from an allocator";
// - `replay --at +T` counts from the origin of the event listing: the
//   layout at a listed event's time holds what that event made;
// - `replay --maps --at T --pid P` before P has a layout says so, non-zero;
// - `info` of a `-p` recording lists the objects mapped at the attach;
// - faults the kernel takes while exec builds the new image belong to the
//   new address space: none is "outside any VMA" through a chain of execs.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }

struct Growth {
  std::optional<std::string> allocator;
  std::string via, call_site, line;
  uint32_t pid = 0;
  uint64_t addr = 0, bytes = 0;
};

std::vector<Growth> growths(const std::string& out) {
  static const std::regex alloc_re("\"allocator\":(null|\"([^\"]*)\")"), via_re("\"via\":\"([a-z]+)\""),
      pid_re("\"pid\":([0-9]+)"), addr_re("\"addr\":\"0x([0-9a-f]+)\""), bytes_re("\"bytes\":([0-9]+)"),
      site_re("\"call_site\":\\{\"pc\":\"[^\"]*\",\"function\":\"([^\"]*)\"");
  std::vector<Growth> v;
  for (const auto& l : e2e::split_lines(out)) {
    if (l.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
    Growth g;
    g.line = l;
    std::smatch m;
    if (std::regex_search(l, m, alloc_re) && m[1] != "null") g.allocator = m[2];
    if (std::regex_search(l, m, via_re)) g.via = m[1];
    if (std::regex_search(l, m, pid_re)) g.pid = static_cast<uint32_t>(std::stoul(m[1]));
    if (std::regex_search(l, m, addr_re)) g.addr = std::stoull(m[1], nullptr, 16);
    if (std::regex_search(l, m, bytes_re)) g.bytes = std::stoull(m[1]);
    if (std::regex_search(l, m, site_re)) g.call_site = m[1];
    v.push_back(g);
  }
  return v;
}

std::string dump(const std::vector<Growth>& gs) {
  std::string s;
  for (const auto& g : gs) s += g.line.substr(0, 700) + "\n";
  return s;
}

// ---- 1. the first growth of every process ---------------------------------------

TEST(MallocFirstGrowth, FirstHeapGrowthOfEachProcessIsUnwoundAndAttributed) {
  // mallocgrowth's main() makes the main arena's first heap with malloc(1):
  // the process's first growth. Its forked copies (sh -c runs it twice,
  // each a new process whose first growth is that one) must be the same.
  TempDir dir;
  std::string wl = e2e::workload("mallocgrowth");
  auto r = e2e::run_command(vm({"trace", "--json", "--faults=off", "--", "sh", "-c",
                                wl + " " + dir.file("a") + " && " + wl + " " + dir.file("b")}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto gs = growths(r.out);
  std::map<uint32_t, std::vector<const Growth*>> by_pid;
  for (const auto& g : gs) by_pid[g.pid].push_back(&g);
  int workloads = 0;
  for (const auto& [pid, list] : by_pid) {
    bool is_workload = false;
    for (const auto* g : list) is_workload |= g->call_site == "small_mallocs_grow_heap";
    if (!is_workload) continue;
    workloads++;
    const Growth* first_brk = nullptr;
    for (const auto* g : list)
      if (g->via == "brk") {
        first_brk = g;
        break;
      }
    ASSERT_NE(first_brk, nullptr) << dump(gs);
    EXPECT_EQ(first_brk->allocator, std::optional<std::string>("malloc")) << "pid " << pid << ":\n" << first_brk->line;
    EXPECT_EQ(first_brk->call_site, "main") << "pid " << pid << ":\n" << first_brk->line;
    EXPECT_NE(first_brk->line.find("\"function\":\"main\""), std::string::npos) << first_brk->line;
  }
  EXPECT_EQ(workloads, 2) << dump(gs);
}

// ---- 2. jemalloc ------------------------------------------------------------------

TEST(MallocJemalloc, PreloadedJemallocGrowthNamesTheWorkloadsCallSite) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  ASSERT_EQ(::access(lib.c_str(), R_OK), 0) << lib << " missing: scripts/setup.sh installs libjemalloc2";
  TempDir dir;
  std::string steps = dir.file("steps");
  // allocsites makes each growth from its own function and logs the pointer.
  auto r = e2e::run_command(
      vm({"trace", "--json", "--faults=off", "--", "env", "LD_PRELOAD=" + lib, e2e::workload("allocsites"), steps}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto gs = growths(r.out);
  auto text = e2e::read_file(steps);
  ASSERT_TRUE(text) << "the workload wrote no steps";
  int checked = 0;
  for (const auto& line : e2e::split_lines(*text)) {
    std::istringstream in(line);
    std::string tag, fn, ptr;
    uint64_t size = 0;
    in >> tag >> fn >> ptr >> size;
    if (tag != "step") continue;
    checked++;
    uint64_t p = std::stoull(ptr, nullptr, 16);
    SCOPED_TRACE(line);
    // jemalloc maps (or extends) the extent that holds the block: one
    // growth whose range holds the pointer, from this function.
    const Growth* hit = nullptr;
    for (const auto& g : gs)
      if (g.addr <= p && p < g.addr + g.bytes && g.call_site == fn) hit = &g;
    ASSERT_NE(hit, nullptr) << "no growth holding the block attributed to " << fn << "\n" << dump(gs);
    ASSERT_TRUE(hit->allocator) << "jemalloc's growth must be attributed to an allocator\n" << hit->line;
    EXPECT_TRUE(*hit->allocator == "malloc" || *hit->allocator == "calloc" || *hit->allocator == "posix_memalign" ||
                *hit->allocator == "jemalloc" || *hit->allocator == "operator new")
        << hit->line;
  }
  EXPECT_EQ(checked, 3);
  for (const auto& g : gs)
    EXPECT_FALSE(g.line.find("libjemalloc") != std::string::npos && !g.allocator)
        << "a growth out of jemalloc left unattributed\n"
        << g.line;
}

// ---- 3 and 4. replay --at ---------------------------------------------------------

// "+1.234567s" -> seconds, from the start of a text event line "  1.234567 ...".
std::optional<double> line_seconds(const std::string& line) {
  std::istringstream in(line);
  double s = 0;
  if (!(in >> s)) return std::nullopt;
  return s;
}

TEST(ReplayAt, RelativeMomentCountsFromTheListingsOrigin) {
  // storm 1 7 maps 7 pages once: the layout at the time the listing prints
  // for that mmap (rounded up to the listing's microseconds) holds it, and
  // a moment well before it does not.
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  auto r = e2e::run_command(vm({"record", "-o", rec, "--", e2e::workload("storm"), "1", "7"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto listing = e2e::run_command(vm({"replay", rec}));
  ASSERT_EQ(listing.status, 0) << describe(listing);
  std::string mmap_line;
  for (const auto& l : e2e::split_lines(listing.out))
    if (l.find(" mmap(") != std::string::npos && l.find("28672") != std::string::npos) mmap_line = l;
  ASSERT_FALSE(mmap_line.empty()) << listing.out;
  auto t = line_seconds(mmap_line);
  ASSERT_TRUE(t) << mmap_line;
  std::string addr = mmap_line.substr(mmap_line.find("= 0x") + 4, 12);
  auto pid_at = mmap_line.find_first_of("0123456789", mmap_line.find(' ', mmap_line.find_first_not_of(' ')));
  std::string pid = mmap_line.substr(pid_at, mmap_line.find_first_not_of("0123456789", pid_at) - pid_at);
  char at[64];
  std::snprintf(at, sizeof(at), "+%.6fs", *t + 0.000002);
  auto after = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", pid}));
  ASSERT_EQ(after.status, 0) << describe(after);
  EXPECT_NE(after.out.find(addr), std::string::npos)
      << "the layout at " << at << " (the listed time of the mmap) must hold " << addr << "\n"
      << mmap_line << "\n"
      << after.out;
  std::snprintf(at, sizeof(at), "+%.6fs", *t - 0.0005);
  auto before = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", pid}));
  if (before.status == 0) {
    EXPECT_EQ(before.out.find(addr), std::string::npos) << "the layout 0.5 ms before the listed mmap must not hold it\n"
                                                        << mmap_line << "\n"
                                                        << before.out;
  }
}

TEST(ReplayAt, MomentBeforeTheProcessHasALayoutSaysSo) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  // The child of sh gets its layout at its fork, some time after the start.
  auto r = e2e::run_command(
      vm({"record", "-o", rec, "--", "sh", "-c", "sleep 0.3; " + e2e::workload("storm") + " 1 7; true"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto listing = e2e::run_command(vm({"replay", rec}));
  ASSERT_EQ(listing.status, 0) << describe(listing);
  std::string storm_pid;
  for (const auto& l : e2e::split_lines(listing.out))
    if (l.find(" storm ") != std::string::npos && l.find(" mmap(") != std::string::npos) {
      std::istringstream in(l);
      double s;
      std::string pidtid;
      in >> s >> pidtid;
      storm_pid = pidtid.substr(0, pidtid.find('/'));
      break;
    }
  ASSERT_FALSE(storm_pid.empty()) << listing.out;
  auto early = e2e::run_command(vm({"replay", rec, "--maps", "--at", "+0.01s", "--pid", storm_pid}));
  EXPECT_NE(early.status, 0) << describe(early);
  EXPECT_EQ(e2e::count_lines(early.err), 1u) << describe(early);
  EXPECT_EQ(early.out, "") << describe(early);
  EXPECT_NE(early.err.find("pid " + storm_pid + " has no layout yet at +0.010s"), std::string::npos) << describe(early);
  EXPECT_NE(early.err.find("its first layout is at +"), std::string::npos) << describe(early);
  // And the moment it names shows the layout.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(early.err, m, std::regex("first layout is at (\\+[0-9.]+s)"))) << early.err;
  // Printed to the microsecond: the next one.
  double first = std::stod(m[1].str().substr(1));
  char at[32];
  std::snprintf(at, sizeof(at), "+%.6fs", first + 0.000001);
  auto then = e2e::run_command(vm({"replay", rec, "--maps", "--at", at, "--pid", storm_pid}));
  EXPECT_EQ(then.status, 0) << describe(then);
  EXPECT_EQ(then.out.rfind("# maps of " + storm_pid + " ", 0), 0u) << describe(then);

  // A pid the recording does not have.
  auto absent = e2e::run_command(vm({"replay", rec, "--maps", "--at", "+0.01s", "--pid", "999999"}));
  EXPECT_NE(absent.status, 0) << describe(absent);
  EXPECT_EQ(e2e::count_lines(absent.err), 1u) << describe(absent);
  EXPECT_NE(absent.err.find("999999"), std::string::npos) << describe(absent);
}

// ---- 5. info of an attach recording -------------------------------------------------

TEST(InfoObjects, AttachRecordingListsTheObjectsMappedAtAttach) {
  TempDir dir;
  std::string rec = dir.file("rec.vmat"), err = dir.file("err");
  // timed (dynamically linked, also in the 6.1 guest) waits for its sleep.
  e2e::Subprocess target({e2e::workload("timed"), "sleep", "15"});
  // Attach, wait for the banner, stop it.
  std::string script = "'" + e2e::vmatrace_bin() + "' record -o '" + rec + "' -p " + std::to_string(target.pid()) +
                       " 2>'" + err + "' & v=$!; for i in $(seq 600); do grep -q 'vmatrace: tracing' '" + err +
                       "' && break; sleep 0.05; done; sleep 0.2; kill -INT $v; wait $v; echo status=$?";
  auto r = e2e::run_command({"sh", "-c", script});
  ASSERT_EQ(r.status, 0) << describe(r) << "\n" << e2e::read_file(err).value_or("");
  ASSERT_NE(e2e::read_file(err).value_or("").find("vmatrace: tracing"), std::string::npos) << describe(r);
  auto info = e2e::run_command(vm({"info", rec}));
  ASSERT_EQ(info.status, 0) << describe(info);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(info.out, m, std::regex("objects: +([0-9]+) mapped files"))) << info.out;
  EXPECT_GE(std::stoi(m[1]), 2) << "timed and libc (and ld.so) are mapped at the attach\n" << info.out;
  EXPECT_TRUE(std::regex_search(info.out, std::regex("[0-9a-f]{40} [^\\n]*/libc\\.so\\.6"))) << info.out;
  EXPECT_TRUE(std::regex_search(info.out, std::regex("[0-9a-f]{40} [^\\n]*/timed\\n"))) << info.out;
}

// ---- 6. faults while exec builds the new image -----------------------------------------

TEST(ExecFaults, ChainOfExecsHasNoFaultOutsideAnyVma) {
  // Five execs in a row (sh -> env -> env -> env -> sh -> true), each
  // making the kernel write the new stack and clear bss before the exec
  // record: every fault lands in a VMA of the layout it belongs to.
  TempDir dir;
  std::string rec = dir.file("rec.vmat");
  auto r = e2e::run_command(vm({"record", "-o", rec, "--", "sh", "-c", "exec env env env sh -c 'exec env true'"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  auto rep = e2e::run_command(vm({"report", rec, "--faults", "--json"}));
  ASSERT_EQ(rep.status, 0) << describe(rep);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(rep.out, m, std::regex("\"faults\":([0-9]+)"))) << rep.out.substr(0, 500);
  uint64_t faults = std::stoull(m[1]);
  ASSERT_TRUE(std::regex_search(rep.out, m, std::regex("\"attributed\":([0-9]+)"))) << rep.out.substr(0, 500);
  uint64_t attributed = std::stoull(m[1]);
  EXPECT_GT(faults, 20u) << rep.out.substr(0, 500);
  EXPECT_EQ(faults - attributed, 0u) << "faults outside any VMA (of " << faults << ")\n" << rep.out.substr(0, 500);
  auto execs = e2e::run_command(vm({"replay", rec}));
  size_t n = 0;
  for (const auto& l : e2e::split_lines(execs.out))
    n += l.find(" exec ") != std::string::npos || l.find(" execve") != std::string::npos;
  EXPECT_GE(n, 5u) << "the chain's execs\n" << execs.out.substr(0, 3000);
}

}  // namespace
