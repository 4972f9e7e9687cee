// Resident memory per VMA (--rss) against the kernel: at every checkpoint
// (the traced process stopped itself; nothing in it changes until SIGCONT)
// the model's Rss of each VMA must be /proc/PID/smaps's within 2% of the
// process's RSS, exact for its private anonymous VMAs, and its total must
// be /proc/PID/status VmRSS within 1%. Live (the model in the Session) and
// replayed from the recording (`replay --pmap --rss --at T --json`).

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/rss_model.h"
#include "e2e_util.h"

using e2e::Stop;
using e2e::TraceHarness;

namespace {

struct SmapsVma {
  uint64_t start = 0, end = 0;
  std::string name;
  bool anonymous_private = false;  // no file, not special, MAP_PRIVATE
  uint64_t rss = 0, anon = 0, swap = 0;
};

struct Smaps {
  std::vector<SmapsVma> vmas;
  uint64_t vm_rss = 0;
};

// /proc/PID/smaps and VmRSS, read while pid is stopped.
Smaps read_smaps(pid_t pid) {
  Smaps out;
  auto text = e2e::read_file("/proc/" + std::to_string(pid) + "/smaps");
  EXPECT_TRUE(text) << "cannot read smaps of " << pid;
  for (const auto& line : e2e::split_lines(text.value_or(""))) {
    unsigned long long a = 0, b = 0, kib = 0;
    char perms[8] = {};
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s %n", &a, &b, perms, &name_at) == 3 && name_at > 0) {
      SmapsVma v;
      v.start = a;
      v.end = b;
      v.name = line.substr(static_cast<size_t>(name_at));
      v.anonymous_private = v.name.empty() && perms[3] == 'p';
      out.vmas.push_back(v);
    } else if (!out.vmas.empty() && std::sscanf(line.c_str(), "Rss: %llu kB", &kib) == 1) {
      out.vmas.back().rss = kib * 1024;
    } else if (!out.vmas.empty() && std::sscanf(line.c_str(), "Anonymous: %llu kB", &kib) == 1) {
      out.vmas.back().anon = kib * 1024;
    } else if (!out.vmas.empty() && std::sscanf(line.c_str(), "Swap: %llu kB", &kib) == 1) {
      out.vmas.back().swap = kib * 1024;
    }
  }
  // [vsyscall] is no VMA of the process (the gate area): no model counts it.
  std::erase_if(out.vmas, [](const SmapsVma& v) { return v.name == "[vsyscall]"; });
  auto status = e2e::read_file("/proc/" + std::to_string(pid) + "/status").value_or("");
  auto at = status.find("VmRSS:");
  if (at != std::string::npos) out.vm_rss = std::strtoull(status.c_str() + at + 6, nullptr, 10) * 1024;
  return out;
}

struct ModelVma {
  uint64_t rss = 0, anon = 0, swap = 0;
};

// Compares the model's residency (by smaps's VMA ranges) with smaps;
// failures are recorded, not fatal. Returns the number of mismatches.
int compare(const Smaps& k, const std::map<uint64_t, ModelVma>& model, uint64_t model_total, const std::string& what) {
  int bad = 0;
  const double tol = 0.02 * static_cast<double>(k.vm_rss);
  std::ostringstream table;
  for (const auto& v : k.vmas) {
    auto it = model.find(v.start);
    ModelVma m = it == model.end() ? ModelVma{} : it->second;
    const bool exact = v.anonymous_private;
    const double diff = std::abs(static_cast<double>(m.rss) - static_cast<double>(v.rss));
    const bool ok = exact ? (m.rss == v.rss && m.anon == v.anon) : diff <= tol;
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "%s %012" PRIx64 "-%012" PRIx64 " smaps rss %8" PRIu64 " anon %8" PRIu64 " | model rss %8" PRIu64
                  " anon %8" PRIu64 "  %s\n",
                  ok ? "  " : "!!", v.start, v.end, v.rss / 1024, v.anon / 1024, m.rss / 1024, m.anon / 1024,
                  v.name.c_str());
    table << buf;
    if (!ok) bad++;
  }
  const double total_diff = std::abs(static_cast<double>(model_total) - static_cast<double>(k.vm_rss));
  if (total_diff > 0.01 * static_cast<double>(k.vm_rss)) bad++;
  if (bad)
    ADD_FAILURE() << what << ": residency differs from smaps (KiB; '!!' marks a VMA off by more than 2% of VmRSS "
                  << k.vm_rss / 1024 << " KiB, or an anonymous one not exact); model total " << model_total / 1024
                  << " KiB vs VmRSS " << k.vm_rss / 1024 << " KiB\n"
                  << table.str();
  return bad;
}

// Live: the Session's model, once the ranges the stop's events changed are
// scanned (by `scan`: --rss-scan's value).
void checkpoints_match_smaps_live(const std::string& scan) {
  TraceHarness::Options o;
  o.rss = true;
  o.rss_scan = scan;
  TraceHarness h(o);
  h.spawn({e2e::workload("checkpoints")});
  int stops = 0, mismatches = 0;
  h.run([&](const Stop& s) {
    stops++;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (h.session().rss_pending(static_cast<uint32_t>(s.pid)) && std::chrono::steady_clock::now() < deadline)
      h.session().step(5);
    ASSERT_FALSE(h.session().rss_pending(static_cast<uint32_t>(s.pid))) << "no residency scan within 5 s of a stop";
    const vmatrace::RssModel* rss = h.session().rss();
    ASSERT_TRUE(rss);
    const vmatrace::RssMap* map = rss->map(static_cast<uint32_t>(s.pid));
    ASSERT_TRUE(map) << "no residency for pid " << s.pid;
    const auto* p = h.session().processor().process(static_cast<uint32_t>(s.pid));
    ASSERT_TRUE(p && p->seeded);
    Smaps k = read_smaps(s.pid);
    std::map<uint64_t, ModelVma> model;
    uint64_t total = 0;
    p->layout.for_each_vma([&](const vmatrace::Vma& v) {
      auto r = vmatrace::vma_residency(*map, v);
      model[v.start] = {r.rss, r.anon, r.swap};
      total += r.rss;
    });
    if (compare(k, model, total, "stop #" + std::to_string(s.index) + " of pid " + std::to_string(s.pid))) mismatches++;
  });
  EXPECT_EQ(h.exit_status(), 0);
  EXPECT_GT(stops, 20);
  EXPECT_EQ(mismatches, 0);
}

TEST(Rss, CheckpointsMatchSmapsLive) { checkpoints_match_smaps_live("auto"); }

// Before Linux 6.7 (no PAGEMAP_SCAN) the scans read /proc/PID/pagemap: the
// same ground truth, forced here on a kernel that has both.
TEST(Rss, CheckpointsMatchSmapsLiveReadingPagemap) { checkpoints_match_smaps_live("pagemap"); }

// Recorded with `vmatrace record --rss`, replayed at moments while each stop
// lasted: the recording carries what the live model had.
TEST(Rss, ReplayPmapRssJsonMatchesSmaps) {
  e2e::TempDir dir;
  const std::string rec = dir.file("rss.vmat");
  struct Seen {
    pid_t pid;
    uint64_t ts;
    Smaps smaps;
  };
  std::vector<Seen> seen;
  auto r = e2e::run_resuming_stops(
      e2e::vmatrace_argv({"record", "--rss", "--rss-interval", "20ms", "-o", rec, "--", e2e::workload("checkpoints"),
                          "merge", "munmap", "mremap", "file", "shanon", "brk", "fork"}),
      [&](pid_t pid) {
        // Long enough for the scan of what changed before the stop (20 ms
        // interval), then a moment inside the stop, while nothing changes.
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        seen.push_back({pid, e2e::now_ns(), read_smaps(pid)});
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      });
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  ASSERT_GT(seen.size(), 8u);
  int mismatches = 0;
  for (const auto& s : seen) {
    auto q = e2e::run_command(e2e::vmatrace_argv(
        {"replay", rec, "--pmap", "--rss", "--json", "--at", std::to_string(s.ts), "--pid", std::to_string(s.pid)}));
    ASSERT_EQ(q.status, 0) << e2e::describe(q);
    // One object per process: {"pid":..,"rss":..,"vmas":[{"start":"0x..","end":"0x..",...,"rss":..,"anon":..}]}
    std::map<uint64_t, ModelVma> model;
    uint64_t total = 0;
    size_t pos = q.out.find("\"vmas\":[");
    ASSERT_NE(pos, std::string::npos) << q.out;
    auto field = [&](size_t from, const std::string& key) -> uint64_t {
      size_t at = q.out.find("\"" + key + "\":", from);
      EXPECT_NE(at, std::string::npos) << key << " missing in " << q.out;
      if (at == std::string::npos) return 0;
      at += key.size() + 3;
      if (q.out[at] == '"') at++;
      return std::strtoull(q.out.c_str() + at, nullptr, 0);
    };
    while ((pos = q.out.find("{\"start\":", pos)) != std::string::npos) {
      ModelVma m{field(pos, "rss"), field(pos, "anon"), field(pos, "swap")};
      model[field(pos, "start")] = m;
      total += m.rss;
      pos++;
    }
    if (compare(s.smaps, model, total, "replay at a stop of pid " + std::to_string(s.pid))) mismatches++;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Rss, ReplayRssNeedsARecordingMadeWithRss) {
  e2e::TempDir dir;
  const std::string rec = dir.file("plain.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", "/bin/true"}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto q = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--pmap", "--rss", "--at", "+0s"}));
  EXPECT_NE(q.status, 0);
  EXPECT_NE(q.err.find("recorded without --rss"), std::string::npos) << e2e::describe(q);
  auto q2 = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--rss"}));
  EXPECT_NE(q2.status, 0);
  EXPECT_NE(q2.err.find("--rss needs --pmap --at T"), std::string::npos) << e2e::describe(q2);
}

}  // namespace

namespace {

// report --rss names the malloc call sites that made memory resident, with
// what the workload knows it wrote: fill_table() 8 MiB, lazy_table() 4 of 8 MiB.
TEST(Rss, ReportNamesTheCallSitesThatGrewResidentMemory) {
  e2e::TempDir dir;
  const std::string rec = dir.file("growth.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "--rss", "-o", rec, "--", e2e::workload("rssgrowth")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  EXPECT_NE(r.err.find("residency scans took"), std::string::npos) << "no scan CPU in the summary\n"
                                                                   << e2e::describe(r);
  auto q = e2e::run_command(e2e::vmatrace_argv({"report", rec, "--rss", "--json", "--top", "0"}));
  ASSERT_EQ(q.status, 0) << e2e::describe(q);
  auto growth_of = [&](const std::string& fn) -> int64_t {
    size_t at = q.out.find("\"what\":\"malloc: " + fn);
    if (at == std::string::npos) return -1;
    at = q.out.find("\"growth\":", at);
    return std::strtoll(q.out.c_str() + at + 9, nullptr, 10);
  };
  const int64_t mib = 1 << 20;
  const int64_t fill = growth_of("fill_table"), lazy = growth_of("lazy_table");
  EXPECT_GE(fill, 8 * mib) << q.out;
  EXPECT_LE(fill, 8 * mib + 8192) << q.out;  // the chunk header's page
  EXPECT_GE(lazy, 4 * mib) << q.out;
  EXPECT_LT(lazy, 8 * mib) << q.out;  // the untouched half is not resident
  auto t = e2e::run_command(e2e::vmatrace_argv({"report", rec, "--rss"}));
  ASSERT_EQ(t.status, 0) << e2e::describe(t);
  EXPECT_NE(t.out.find("growth by what created the memory"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("malloc: fill_table"), std::string::npos) << t.out;
}

}  // namespace

namespace {

// top --batch: one frame of a process stopped at a checkpoint, against its
// /proc/PID/status (VmSize exactly, VmRSS within 1%).
TEST(Top, BatchFrameOfAStoppedProcessMatchesProc) {
  e2e::Subprocess w({e2e::workload("checkpoints"), "merge"});
  ASSERT_TRUE(e2e::wait_fully_stopped(w.pid())) << "checkpoints did not stop";
  auto r =
      e2e::run_command(e2e::vmatrace_argv({"top", "--batch", "--refresh", "300ms", "-p", std::to_string(w.pid())}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  const uint64_t vsz = e2e::top_frame_kib(r.out, "VSZ"), rss = e2e::top_frame_kib(r.out, "RSS");
  const uint64_t vm_size = e2e::status_kib(w.pid(), "VmSize"), vm_rss = e2e::status_kib(w.pid(), "VmRSS");
  EXPECT_EQ(vsz, vm_size) << r.out;
  EXPECT_LE(std::abs(static_cast<double>(rss) - static_cast<double>(vm_rss)), 0.01 * static_cast<double>(vm_rss))
      << "VmRSS " << vm_rss << " KiB\n"
      << r.out;
  EXPECT_NE(r.out.find("RSS by kind"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("anonymous mmap"), std::string::npos) << r.out;
  ::kill(w.pid(), SIGCONT);
  EXPECT_EQ(w.wait().status, 0);
}

TEST(Top, RefusesAStdoutThatIsNotATerminal) {
  auto r = e2e::run_command(e2e::vmatrace_argv({"top", "--", "/bin/true"}));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("stdout is not a terminal: use --batch"), std::string::npos) << e2e::describe(r);
}

}  // namespace

namespace {

// The kernel's counters as /proc/PID/status shows them (task_mem(): RssFile,
// RssAnon, VmSwap, RssShmem), in bytes.
vmatrace::KernelRss status_counters(pid_t pid) {
  return {e2e::status_kib(pid, "RssFile") * 1024, e2e::status_kib(pid, "RssAnon") * 1024,
          e2e::status_kib(pid, "VmSwap") * 1024, e2e::status_kib(pid, "RssShmem") * 1024};
}

std::string kib_text(const vmatrace::KernelRss& k) {
  return "anon " + std::to_string(k.anon / 1024) + " file " + std::to_string(k.file / 1024) + " shmem " +
         std::to_string(k.shmem / 1024) + " swap " + std::to_string(k.swap / 1024) + " KiB";
}

// The model's counters (from the rss_stat records and the faults' single
// pages) against /proc/PID/status at a stop; false (with a failure) when
// they differ or are unknown.
bool counters_match(TraceHarness& h, const Stop& s) {
  const auto k = h.session().rss()->kernel_counters(static_cast<uint32_t>(s.pid));
  const auto want = status_counters(s.pid);
  if (!k) {
    ADD_FAILURE() << "stop #" << s.index << " of pid " << s.pid
                  << ": no kernel counters in the model (no rss_stat record of it); /proc says " << kib_text(want);
    return false;
  }
  if (!(*k == want)) {
    ADD_FAILURE() << "stop #" << s.index << " of pid " << s.pid << ": model " << kib_text(*k) << " vs /proc/" << s.pid
                  << "/status " << kib_text(want);
    return false;
  }
  return true;
}

// At every checkpoint (stopped, nothing in flight) the model's copy of the
// kernel's resident counters equals /proc/PID/status exactly, with residency
// scans off: the counters come from the rss_stat tracepoint alone. 6.2+
// (per-CPU counters summed the way task_mem() sums them since 6.16); on 6.1
// VmRSS lags the faults each thread has not folded in yet (docs/rss.md).
TEST(Rss, KernelCountersEqualProcStatusAtEveryCheckpoint) {
  TraceHarness::Options o;
  o.rss = true;
  o.rss_scan = "events";
  TraceHarness h(o);
  h.spawn({e2e::workload("checkpoints")});
  int stops = 0, mismatches = 0;
  h.run([&](const Stop& s) {
    stops++;
    if (!counters_match(h, s)) mismatches++;
  });
  EXPECT_EQ(h.exit_status(), 0);
  EXPECT_GT(stops, 20);
  EXPECT_EQ(mismatches, 0);
}

std::string thp_enabled() {
  const auto text = e2e::read_file("/sys/kernel/mm/transparent_hugepage/enabled").value_or("");
  const auto a = text.find('['), b = text.find(']');
  return a == std::string::npos || b == std::string::npos || b < a ? "(unknown: " + text + ")"
                                                                   : text.substr(a + 1, b - a - 1);
}

uint64_t anon_huge_bytes(pid_t pid) {
  uint64_t total = 0;
  for (const auto& line : e2e::split_lines(e2e::read_file("/proc/" + std::to_string(pid) + "/smaps").value_or(""))) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "AnonHugePages: %llu kB", &kib) == 1) total += kib * 1024;
  }
  return total;
}

// A fault that maps a transparent huge page counts 512 pages at once, which
// its fault record cannot tell: the rss_stat record does, and places the
// 2 MiB. With scans off, at each of tests/workloads/thp.c's stops (before
// the writes, after three huge pages and a small one, after munmap of one,
// after madvise(DONTNEED) of another): the counters equal /proc/PID/status
// and every private anonymous VMA's Rss equals smaps's exactly. Needs THP
// `madvise` or `always`: with `never` no huge page can be mapped and the
// test fails saying so (it does not pass untested).
TEST(Rss, TransparentHugePagesCountedAsTheKernelCountsThem) {
  const std::string thp = thp_enabled();
  ASSERT_TRUE(thp == "always" || thp == "madvise")
      << "transparent huge pages are '" << thp
      << "' here (/sys/kernel/mm/transparent_hugepage/enabled): this test needs madvise or always";
  TraceHarness::Options o;
  o.rss = true;
  o.rss_scan = "events";  // what the model knows comes from the records alone
  TraceHarness h(o);
  h.spawn({e2e::workload("thp")});
  int stops = 0, mismatches = 0;
  uint64_t most_huge = 0;
  h.run([&](const Stop& s) {
    stops++;
    if (!counters_match(h, s)) mismatches++;
    most_huge = std::max(most_huge, anon_huge_bytes(s.pid));
    const vmatrace::RssMap* map = h.session().rss()->map(static_cast<uint32_t>(s.pid));
    const auto* p = h.session().processor().process(static_cast<uint32_t>(s.pid));
    ASSERT_TRUE(map && p && p->seeded);
    for (const auto& v : read_smaps(s.pid).vmas) {
      if (!v.anonymous_private) continue;
      const vmatrace::Vma* mv = p->layout.find(v.start);
      const auto r = mv ? vmatrace::vma_residency(*map, *mv) : vmatrace::Residency{};
      if (r.rss != v.rss || r.anon != v.anon) {
        ADD_FAILURE() << "stop #" << s.index << ": VMA " << std::hex << v.start << "-" << v.end << std::dec
                      << " smaps Rss " << v.rss / 1024 << " Anonymous " << v.anon / 1024 << " KiB, model "
                      << r.rss / 1024 << " / " << r.anon / 1024 << " KiB";
        mismatches++;
      }
    }
  });
  EXPECT_EQ(h.exit_status(), 0);
  EXPECT_EQ(stops, 4);
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(most_huge, 3u * (2u << 20)) << "the kernel mapped fewer than three huge pages (smaps AnonHugePages "
                                        << most_huge / 1024 << " KiB): the THP path was not exercised";
}

}  // namespace
