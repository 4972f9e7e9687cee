// Page-fault hotspots against the kernel's own answers: the faultpages
// workload faults exactly 4096, 256 and 16 pages in three anonymous
// mappings; the report must rank them so with exactly those counts, in
// stream and in summary (in-kernel aggregation) mode, live and replayed;
// its total must match /proc/PID/stat minflt+majflt (read while the
// workload is stopped before its exit); a file read after its page cache was
// dropped must show major faults. These load BPF: they fail, not skip, when
// it cannot be loaded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "report/fault_report.h"
#include "trace/session.h"

using namespace e2e;

namespace {

constexpr uint64_t kPage = 4096;

struct KernelFaults {
  uint64_t minflt = 0, majflt = 0;
  uint64_t total() const { return minflt + majflt; }
};

// Fields 10 and 12 of /proc/PID/stat (after the parenthesised comm).
KernelFaults kernel_faults(pid_t pid) {
  auto s = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!s) throw std::runtime_error("no /proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(s->substr(s->rfind(')') + 2));
  std::vector<std::string> f;
  std::string x;
  while (in >> x) f.push_back(x);
  // f[0] is field 3 (state): minflt is field 10, majflt field 12.
  return {std::stoull(f.at(7)), std::stoull(f.at(9))};
}

// A file of `pages` pages that is not in the page cache.
void make_cold_file(const std::string& path, size_t pages) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  std::string page(kPage, 'x');
  for (size_t i = 0; i < pages; i++) ASSERT_EQ(::write(fd, page.data(), kPage), static_cast<ssize_t>(kPage));
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);
  write_file("/proc/sys/vm/drop_caches", "1");
}

struct FaultRun {
  vmatrace::FaultCounts at_stop;  // the report's totals while the workload was stopped
  uint64_t attributed_at_stop = 0;
  KernelFaults kernel;  // /proc/PID/stat at that moment
  std::vector<vmatrace::FaultReport::VmaRow> vmas;
  vmatrace::FaultCounts total;
  bool majmin_known = false;
};

// Traces faultpages --stop in-process with a fault report, like
// `trace --summary` (stream) or `trace --faults=summary`.
FaultRun trace_in_process(bool summary, const std::vector<std::string>& extra, const std::string& record = "") {
  std::FILE* devnull = std::fopen("/dev/null", "w");
  vmatrace::TraceOptions to;
  to.quiet = true;
  to.summary = false;
  to.out = devnull;
  to.print.events = false;
  to.fault_report = true;
  to.fault_report_opts.top = 0;
  to.loader.fault_summary = summary;
  to.record_path = record;
  to.force = true;
  FaultRun run;
  {
    vmatrace::Session s(std::move(to));  // throws (fails the test) if BPF cannot load
    std::vector<std::string> argv = {workload("faultpages"), "--stop"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_t pid = s.spawn(argv);
    bool stopped = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!s.done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        throw std::runtime_error("faultpages did not finish");
      }
      s.step(1);
      if (!stopped && fully_stopped(pid)) {
        stopped = true;
        s.drain();
        run.kernel = kernel_faults(pid);
        if (summary) s.collect_fault_summary(pid);
        run.at_stop = s.fault_report()->total();
        run.attributed_at_stop = s.fault_report()->attributed();
        ::kill(pid, SIGCONT);
      }
    }
    s.drain();
    s.collect_fault_summary();
    EXPECT_TRUE(stopped);
    EXPECT_EQ(s.child_status(), 0);
    run.vmas = s.fault_report()->by_vma();
    run.total = s.fault_report()->total();
    run.majmin_known = run.total.major + run.total.minor == run.total.faults;
  }
  std::fclose(devnull);
  return run;
}

// The three workload mappings, found by size among anonymous rw-p VMAs.
void expect_three_mappings(const std::vector<vmatrace::FaultReport::VmaRow>& vmas) {
  std::vector<uint64_t> ranks;
  for (size_t i = 0; i < vmas.size(); i++) {
    const auto& v = vmas[i];
    uint64_t pages = (v.end - v.start) / kPage;
    if (!v.name.empty() || v.perms != "rw-p" || (pages != 4096 && pages != 256 && pages != 16)) continue;
    EXPECT_EQ(v.c.faults, pages) << "mapping of " << pages << " pages";
    EXPECT_EQ(v.c.write, pages);
    EXPECT_EQ(v.c.minor, pages);
    EXPECT_EQ(v.c.major, 0u);
    ranks.push_back(pages);
  }
  EXPECT_EQ(ranks, (std::vector<uint64_t>{4096, 256, 16})) << "ranked by faults, most first";
  ASSERT_GE(vmas.size(), 3u);
  EXPECT_EQ(vmas[0].c.faults, 4096u) << "the 4096-page mapping is the top VMA";
}

void expect_matches_kernel(const FaultRun& r) {
  ASSERT_GT(r.kernel.total(), 4368u);
  std::printf("faults: report %llu, /proc/PID/stat %llu (minflt %llu + majflt %llu)\n",
              static_cast<unsigned long long>(r.at_stop.faults), static_cast<unsigned long long>(r.kernel.total()),
              static_cast<unsigned long long>(r.kernel.minflt), static_cast<unsigned long long>(r.kernel.majflt));
  double diff = std::abs(static_cast<double>(r.at_stop.faults) - static_cast<double>(r.kernel.total()));
  EXPECT_LE(diff, 0.01 * r.kernel.total()) << "report " << r.at_stop.faults << " vs /proc/PID/stat minflt "
                                           << r.kernel.minflt << " + majflt " << r.kernel.majflt;
  EXPECT_GE(r.attributed_at_stop, r.at_stop.faults * 999 / 1000) << "faults not placed in a VMA";
  EXPECT_TRUE(r.majmin_known) << "major/minor must come from the perf events on this kernel";
}

// The by_vma rows of a JSON report: (start, end, path, faults), in order.
struct JsonVma {
  uint64_t start, end, faults, major;
  std::string path;
  bool operator==(const JsonVma&) const = default;
};
std::vector<JsonVma> json_by_vma(const std::string& json) {
  auto b = json.find("\"by_vma\":[");
  auto e = json.find("],\"by_range\"");
  if (b == std::string::npos || e == std::string::npos) return {};
  std::string s = json.substr(b, e - b);
  std::regex row(
      R"re("start":"0x([0-9a-f]+)","end":"0x([0-9a-f]+)","perms":"[^"]*","path":"([^"]*)","name":"[^"]*","faults":(\d+),"read":\d+,"write":\d+,"exec":\d+,"major":(\d+))re");
  std::vector<JsonVma> out;
  for (std::sregex_iterator it(s.begin(), s.end(), row), end; it != end; ++it)
    out.push_back({std::stoull((*it)[1], nullptr, 16), std::stoull((*it)[2], nullptr, 16), std::stoull((*it)[4]),
                   std::stoull((*it)[5]), (*it)[3]});
  return out;
}

std::vector<vmatrace::FaultReport::VmaRow> rows_of(const std::vector<JsonVma>& j) {
  std::vector<vmatrace::FaultReport::VmaRow> out;
  for (const auto& x : j) {
    vmatrace::FaultReport::VmaRow r;
    r.start = x.start, r.end = x.end, r.name = x.path, r.perms = "rw-p";
    r.c.faults = r.c.write = r.c.minor = x.faults;  // expect_three_mappings checks these
    r.c.major = x.major;
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST(Faults, StreamModeRanksMappingsAndMatchesKernelCounters) {
  FaultRun r = trace_in_process(false, {});
  expect_three_mappings(r.vmas);
  expect_matches_kernel(r);
}

TEST(Faults, SummaryModeRanksMappingsAndMatchesKernelCounters) {
  FaultRun r = trace_in_process(true, {});
  expect_three_mappings(r.vmas);
  expect_matches_kernel(r);
}

TEST(Faults, ColdFileReadShowsMajorFaults) {
  TempDir dir;
  std::string f = dir.file("cold.bin");
  make_cold_file(f, 256);
  struct statfs sf {};
  ASSERT_EQ(::statfs(dir.path().c_str(), &sf), 0);
  const bool disk_backed = sf.f_type != TMPFS_MAGIC && sf.f_type != RAMFS_MAGIC;
  RecordProperty("cold_file_disk_backed", disk_backed ? "yes" : "no");
  for (bool summary : {false, true}) {
    if (summary) make_cold_file(f, 256);
    FaultRun r = trace_in_process(summary, {"--file", f});
    bool found = false;
    for (const auto& v : r.vmas) {
      if (v.name != f) continue;
      found = true;
      // A file on memory-backed storage (the 6.1 VM has no disk: its /tmp
      // is tmpfs) cannot take a major fault: there the kernel's own
      // counter, not a constant, is the expectation.
      if (disk_backed) {
        EXPECT_GT(v.c.major, 0u) << (summary ? "summary" : "stream") << " mode";
      }
      EXPECT_EQ(v.c.read, v.c.faults);
    }
    EXPECT_TRUE(found) << "no row for " << f << (summary ? " (summary)" : " (stream)");
    if (disk_backed) {
      EXPECT_GT(r.total.major, 0u);
    } else {
      EXPECT_EQ(r.at_stop.major, r.kernel.majflt) << "memory-backed file: majors must match the kernel's (0)";
    }
    expect_matches_kernel(r);
  }
}

TEST(Faults, LiveSummaryEqualsReportOfTheRecording) {
  TempDir dir;
  std::string rec = dir.file("faults.vmat");
  auto live = run_command(
      {vmatrace_bin(), "trace", "--summary", "--json", "--top", "0", "-o", rec, "--", workload("faultpages")});
  ASSERT_EQ(live.status, 0) << live.err;
  auto lines = split_lines(live.out);
  ASSERT_FALSE(lines.empty());
  const std::string& last = lines.back();
  ASSERT_EQ(last.rfind("{\"event\":\"fault_report\",", 0), 0u) << last.substr(0, 200);
  auto replay = run_command({vmatrace_bin(), "report", rec, "--faults", "--json", "--top", "0"});
  ASSERT_EQ(replay.status, 0) << replay.err;
  auto a = json_by_vma(last), b = json_by_vma(replay.out);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "live and replayed by_vma differ";
  // Everything from by_vma on (rankings, ranges, ips, timeline, threads):
  // the same records through the same class give the same bytes.
  std::string replayed = replay.out.substr(0, replay.out.find_last_not_of('\n') + 1);
  EXPECT_EQ(last.substr(last.find("\"by_vma\"")), replayed.substr(replayed.find("\"by_vma\"")));
  expect_three_mappings(rows_of(b));
  // Text and folded forms of the same recording.
  auto text = run_command({vmatrace_bin(), "report", rec, "--faults"});
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("Top VMAs"), std::string::npos);
  EXPECT_NE(text.out.find("Top address ranges"), std::string::npos);
  EXPECT_NE(text.out.find("Top faulting code locations"), std::string::npos);
  auto folded = run_command({vmatrace_bin(), "report", rec, "--faults", "--folded"});
  ASSERT_EQ(folded.status, 0);
  EXPECT_NE(folded.out.find("faultpages;faultpages;faultpages+0x"), std::string::npos) << folded.out;
}

TEST(Faults, CliSummaryModeCountsInTheKernel) {
  auto r =
      run_command({vmatrace_bin(), "trace", "--faults=summary", "--json", "--top", "0", "--", workload("faultpages")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("\"event\":\"fault\""), std::string::npos) << "no per-fault records in summary mode";
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("\"mode\":\"summary\""), std::string::npos);
  expect_three_mappings(rows_of(json_by_vma(lines.back())));
}

// --faults=summary finds each fault's VMA by walking the kernel's VMA tree
// (a maple tree) itself: with 3000 one-page VMAs the tree is several levels
// deep, and every one of them must get exactly its one fault, found by the
// walk (--bpf-stats says how each VMA was found), with bpf_find_vma() never
// needed in this single-threaded process.
TEST(Faults, SummaryWalksADeepVmaTreeToEveryVma) {
  constexpr uint64_t kMany = 3000;
  auto r = run_command({vmatrace_bin(), "trace", "--faults=summary", "--bpf-stats", "--json", "--top", "0", "--",
                        workload("faultpages"), "--many", std::to_string(kMany)});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  std::smatch m;
  std::regex many_re(R"re(many=0x([0-9a-f]+)-0x([0-9a-f]+))re");
  ASSERT_TRUE(std::regex_search(r.out, m, many_re)) << r.out;
  const uint64_t first = std::stoull(m[1], nullptr, 16), end = std::stoull(m[2], nullptr, 16);
  ASSERT_EQ(end - first, kMany * kPage);
  std::string report, stats;
  for (const auto& l : lines) {
    if (l.rfind("{\"event\":\"fault_report\",", 0) == 0) report = l;
    if (l.rfind("{\"event\":\"bpf_stats\",", 0) == 0) stats = l;
  }
  ASSERT_FALSE(report.empty()) << r.out;
  ASSERT_FALSE(stats.empty()) << r.out;
  std::map<uint64_t, JsonVma> in_region;
  for (const auto& v : json_by_vma(report))
    if (v.start >= first && v.start < end) in_region.emplace(v.start, v);
  EXPECT_EQ(in_region.size(), kMany) << "one row per VMA of the region";
  for (uint64_t a = first; a < end; a += kPage) {
    auto it = in_region.find(a);
    if (it == in_region.end()) {
      ADD_FAILURE() << "no row for the VMA at 0x" << std::hex << a;
      break;
    }
    EXPECT_EQ(it->second.end, a + kPage);
    EXPECT_EQ(it->second.faults, 1u) << "the VMA at 0x" << std::hex << a;
  }
  std::regex lookups_re(R"re("fault_vma_lookups":\{"cache":(\d+),"walk":(\d+),"find_vma":(\d+),"not_found":(\d+)\})re");
  ASSERT_TRUE(std::regex_search(stats, m, lookups_re)) << stats;
  EXPECT_GE(std::stoull(m[2]), kMany) << "each VMA of the region found by the walk\n" << stats;
  EXPECT_EQ(std::stoull(m[3]), 0u) << "bpf_find_vma() was needed\n" << stats;
  EXPECT_EQ(std::stoull(m[4]), 0u) << "a fault without its VMA\n" << stats;
  EXPECT_NE(r.err.find("by tree walk"), std::string::npos) << r.err;
}
