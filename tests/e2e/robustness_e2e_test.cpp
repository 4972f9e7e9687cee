// Hostile conditions around the vmatrace binary, run as a user would run it
// (a subprocess): signals to the tracer and to the traced command, a full
// disk, many threads and many short-lived children, credentials under sudo,
// symlinks planted where a recording goes, and missing capabilities. Each
// test names one case of docs/generated/reliability.md (generated from
// these results by scripts/reliability-report.sh).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

using e2e::RunResult;
using e2e::Subprocess;
using e2e::TempDir;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }
using e2e::count_lines;
using e2e::describe;

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Waits until pred() holds (polling), up to `limit`.
bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 20s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// VmRSS of pid in KiB (0 when unknown).
uint64_t rss_kib(pid_t pid) {
  auto s = e2e::read_file("/proc/" + std::to_string(pid) + "/status");
  if (!s) return 0;
  std::smatch m;
  if (!std::regex_search(*s, m, std::regex(R"(VmRSS:\s+(\d+) kB)"))) return 0;
  return std::stoull(m[1]);
}

// `bpftool -j map dump` of the BPF map named `name` that process `pid`
// holds (found through its fds' map_id), not of every map of that name on
// the machine: other tracers may be running.
RunResult dump_own_map(pid_t pid, const std::string& name) {
  std::regex id_re(R"(map_id:\s+(\d+))");
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", ec)) {
    std::smatch m;
    auto info = e2e::read_file(fd.path().string()).value_or("");
    if (!std::regex_search(info, m, id_re)) continue;
    auto show = e2e::run_command({"bpftool", "-j", "map", "show", "id", m[1]});
    if (has(show.out, "\"name\":\"" + name + "\""))
      return e2e::run_command({"bpftool", "-j", "map", "dump", "id", m[1]});
  }
  return {1, "", "no BPF map named " + name + " among the fds of pid " + std::to_string(pid)};
}

// ---- the traced command dies ------------------------------------------------

TEST(Robustness, TracedProcessSigkilledEndsTraceCleanly) {
  auto r = e2e::run_command(vm({"trace", "--", "sh", "-c", "kill -9 $$"}));
  EXPECT_EQ(r.status, 137) << describe(r);
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(vmatrace: \d+ records.*; lost 0)"))) << describe(r);
}

// ---- signals to vmatrace while it records ------------------------------------

// vmatrace record of a long storm; once the recording has data, `sig`; the
// recording must then end with its trailer (replay exits 0, `info` says
// clean), and the workload is left running (detached) as strace leaves it.
// The storm outruns any consumer, so the ring buffer is full when the
// signal comes and vmatrace drains it all before closing: a 1 MiB buffer
// keeps that backlog (and the time to the trailer) small in a sanitizer
// build on a loaded machine too.
void record_then_signal(int sig) {
  TempDir dir;
  std::string out = dir.file("rec.vmat");
  Subprocess p(vm({"record", "--ringbuf-size", "1048576", "-o", out, "--", e2e::workload("storm"), "100000000"}));
  ASSERT_TRUE(wait_for([&] { return file_size(out) > 4096; })) << "no data recorded";
  // Detached, still running afterwards: ours to end, even when a check fails.
  struct KillAll {
    std::vector<pid_t> pids;
    void now() {
      for (pid_t k : pids) ::kill(k, SIGKILL);
      pids.clear();
    }
    ~KillAll() { now(); }
  } kids{e2e::children_of(p.pid())};
  ::kill(p.pid(), sig);
  auto r = p.wait(120s);
  kids.now();
  EXPECT_EQ(r.status, 128 + sig) << describe(r);
  EXPECT_TRUE(has(r.err, "records")) << "summary printed\n" << describe(r);
  auto rep = e2e::run_command(vm({"replay", out}));
  EXPECT_EQ(rep.status, 0) << describe(rep);
  EXPECT_TRUE(has(rep.out, "mmap(")) << describe(rep);
  auto info = e2e::run_command(vm({"info", out}));
  EXPECT_TRUE(has(info.out, "state:     clean")) << describe(info);
}

TEST(Robustness, SigintMidRecordLeavesCleanRecording) { record_then_signal(SIGINT); }
TEST(Robustness, SigtermMidRecordLeavesCleanRecording) { record_then_signal(SIGTERM); }
TEST(Robustness, SighupMidRecordLeavesCleanRecording) { record_then_signal(SIGHUP); }

TEST(Robustness, SigkillMidRecordReplaysPrefixAndSaysCutShort) {
  TempDir dir;
  std::string out = dir.file("rec.vmat");
  Subprocess p(vm({"record", "-o", out, "--", e2e::workload("storm"), "100000000"}));
  // Past the first chunk, so that there is a prefix to replay.
  ASSERT_TRUE(wait_for([&] { return file_size(out) > 256 * 1024; }, 60s)) << "no data recorded";
  auto kids = e2e::children_of(p.pid());
  ::kill(p.pid(), SIGKILL);
  p.wait(30s);
  for (pid_t k : kids) ::kill(k, SIGKILL);
  auto rep = e2e::run_command(vm({"replay", out}));
  EXPECT_EQ(rep.status, 3) << describe(rep);
  EXPECT_EQ(count_lines(rep.err), 1u) << describe(rep);
  EXPECT_TRUE(has(rep.err, "cut short")) << describe(rep);
  EXPECT_TRUE(has(rep.out, "mmap(")) << "a prefix of the events\n" << describe(rep);
}

// ---- the disk fills up --------------------------------------------------------

TEST(Robustness, DiskFullIsOneClearErrorAndTracedProcessUnharmed) {
  TempDir dir;
  std::string mnt = dir.file("small");
  std::filesystem::create_directory(mnt);
  ASSERT_EQ(::mount("none", mnt.c_str(), "tmpfs", 0, "size=256k"), 0) << std::strerror(errno);
  struct Unmount {
    std::string m;
    ~Unmount() { ::umount2(m.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string out = mnt + "/rec.vmat";
  // The workload's own output goes to a file outside the small tmpfs.
  std::string wl_out = dir.file("workload.out");
  auto r = e2e::run_command(vm({"record", "-o", out, "--", "sh", "-c", "\"$0\" 200000 >\"$1\"; echo status=$? >>\"$1\"",
                                e2e::workload("storm"), wl_out}),
                            120s);
  EXPECT_NE(r.status, 0) << describe(r);
  auto err_lines = e2e::split_lines(r.err);
  size_t enospc = std::count_if(err_lines.begin(), err_lines.end(),
                                [&](const std::string& l) { return has(l, out) && has(l, "No space left on device"); });
  EXPECT_EQ(enospc, 1u) << "one line naming the path and the errno\n" << describe(r);
  // The traced command ran to completion (vmatrace waited for it or let it go).
  ASSERT_TRUE(wait_for([&] { return has(e2e::read_file(wl_out).value_or(""), "status="); }, 60s));
  auto wl = e2e::read_file(wl_out).value_or("");
  EXPECT_TRUE(has(wl, "elapsed_ns=")) << wl;
  EXPECT_TRUE(has(wl, "status=0")) << wl;
  // What was written is readable up to its last complete chunk.
  auto rep = e2e::run_command(vm({"replay", out}));
  EXPECT_EQ(rep.status, 3) << describe(rep);
  EXPECT_TRUE(has(rep.out, "mmap(")) << describe(rep);
}

// ---- many threads, many children -------------------------------------------

// SixtyFourThreadsLoseNothing: robustness_concurrency_e2e_test.cpp.

// Under AddressSanitizer, freed memory is held back (quarantine, 256 MiB by
// default) to catch uses after free, so the RSS of a vmatrace built with it
// grows until the quarantine is full: not what the bounded-memory test
// measures. While one of these lives, processes started get a 4 MiB one.
// (Without ASan, ASAN_OPTIONS means nothing to them.)
class AsanQuarantineLimit {
 public:
  AsanQuarantineLimit() {
    const char* cur = std::getenv("ASAN_OPTIONS");
    if (cur) saved_ = cur;
    std::string v = saved_.value_or("");
    v += std::string(v.empty() ? "" : ":") + "quarantine_size_mb=4";
    ::setenv("ASAN_OPTIONS", v.c_str(), 1);
  }
  ~AsanQuarantineLimit() {
    if (saved_)
      ::setenv("ASAN_OPTIONS", saved_->c_str(), 1);
    else
      ::unsetenv("ASAN_OPTIONS");
  }
  AsanQuarantineLimit(const AsanQuarantineLimit&) = delete;
  AsanQuarantineLimit& operator=(const AsanQuarantineLimit&) = delete;

 private:
  std::optional<std::string> saved_;
};

// 2000 short-lived traced children: the frontend's memory stays bounded
// (RSS at the end < 2x RSS after 200 children) and the kernel's per-pid
// state is dropped as they exit (only the shell is left in the map).
TEST(Robustness, ThousandsOfShortLivedChildrenStayBounded) {
  // The shell stops itself after 200 children and after 2000, so the
  // measurements are taken while nothing moves.
  AsanQuarantineLimit limit;
  Subprocess p(vm({"trace", "--faults=off", "--", "sh", "-c",
                   "for i in $(seq 200); do /bin/true; done; kill -STOP $$; "
                   "for i in $(seq 1800); do /bin/true; done; kill -STOP $$"}));
  pid_t sh = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        auto k = e2e::children_of(p.pid());
        if (!k.empty()) sh = k[0];
        return sh && e2e::process_state(sh) == 'T';
      },
      60s));
  std::this_thread::sleep_for(300ms);  // let the frontend drain
  uint64_t rss200 = rss_kib(p.pid());
  ::kill(sh, SIGCONT);
  ASSERT_TRUE(wait_for([&] { return e2e::process_state(sh) == 'T'; }, 120s));
  std::this_thread::sleep_for(300ms);
  uint64_t rss2000 = rss_kib(p.pid());
  auto dump = dump_own_map(p.pid(), "vmat_traced_pid");
  ::kill(sh, SIGCONT);
  auto r = p.wait(60s);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_GT(rss200, 0u);
  EXPECT_LT(rss2000, 2 * rss200) << "RSS after 200 children " << rss200 << " KiB, after 2000 " << rss2000 << " KiB";
  // Only the shell itself is still traced at the second stop.
  size_t entries = 0;
  for (size_t i = 0; (i = dump.out.find("\"key\":[", i)) != std::string::npos; i++) entries++;
  EXPECT_EQ(dump.status, 0) << dump.err;
  EXPECT_LE(entries, 1u) << "bpftool: " << dump.out.substr(0, 2000) << dump.err;
}

// ---- credentials and files ------------------------------------------------

TEST(Robustness, SudoRunsCommandAsInvokingUser) {
  // As `sudo vmatrace ...` from uid 65534 would leave the environment.
  auto inner = e2e::run_command({"env", "SUDO_UID=65534", "SUDO_GID=65534", e2e::vmatrace_bin(), "trace",
                                 "--faults=off", "--", "sh", "-c", "echo uid=$(id -u) gid=$(id -g)"});
  EXPECT_EQ(inner.status, 0) << describe(inner);
  EXPECT_TRUE(has(inner.out, "uid=65534 gid=65534")) << describe(inner);
  auto user = e2e::run_command({e2e::vmatrace_bin(), "trace", "--faults=off", "--user", "nobody", "--", "id", "-u"});
  EXPECT_EQ(user.status, 0) << describe(user);
  EXPECT_TRUE(has(user.out, "65534")) << describe(user);
  auto bad = e2e::run_command({e2e::vmatrace_bin(), "trace", "--user", "no-such-user-xyz", "--", "/bin/true"});
  EXPECT_NE(bad.status, 0);
  EXPECT_EQ(count_lines(bad.err), 1u) << describe(bad);
  EXPECT_TRUE(has(bad.err, "no such user")) << describe(bad);
}

TEST(Robustness, RecordRefusesSymlinkEvenWithForce) {
  // A symlink planted in /tmp (world-writable, sticky): the classic attack.
  std::string target = "/tmp/vmatrace-e2e-target-" + std::to_string(::getpid());
  std::string link = "/tmp/vmatrace-e2e-link-" + std::to_string(::getpid());
  e2e::write_file(target, "precious\n");
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  for (bool force : {false, true}) {
    std::vector<std::string> args = {"record", "-o", link};
    if (force) args.push_back("--force");
    args.insert(args.end(), {"--", "/bin/true"});
    auto r = e2e::run_command(vm(args));
    EXPECT_NE(r.status, 0) << describe(r);
    EXPECT_EQ(count_lines(r.err), 1u) << describe(r);
    EXPECT_TRUE(has(r.err, link)) << describe(r);
    EXPECT_EQ(e2e::read_file(target).value_or(""), "precious\n") << (force ? "with --force" : "without --force");
  }
  ::unlink(link.c_str());
  ::unlink(target.c_str());
}

// ---- least privilege ----------------------------------------------------------

bool have_capsh() { return ::access("/usr/sbin/capsh", X_OK) == 0 || ::access("/sbin/capsh", X_OK) == 0; }

// Runs `vmatrace trace -- /bin/true` as root with every capability but
// `keep` dropped from the bounding set (so root's exec gets only those).
RunResult trace_with_caps(const std::vector<std::string>& keep) {
  auto print = e2e::run_command({"capsh", "--print"});
  std::smatch m;
  std::regex bounding_re(R"(Bounding set =(\S+))");
  if (!std::regex_search(print.out, m, bounding_re)) return {1, "", "capsh --print: no bounding set"};
  std::string drop, all = m[1];
  size_t i = 0;
  while (i <= all.size()) {
    size_t j = all.find(',', i);
    if (j == std::string::npos) j = all.size();
    std::string cap = all.substr(i, j - i);
    if (!cap.empty() && std::find(keep.begin(), keep.end(), cap) == keep.end()) drop += (drop.empty() ? "" : ",") + cap;
    i = j + 1;
  }
  std::string cmd = e2e::vmatrace_bin() + " trace --faults=off -- /bin/true";
  return e2e::run_command({"capsh", "--drop=" + drop, "--", "-c", cmd});
}

TEST(Robustness, LeastPrivilegeCapabilities) {
  // scripts/setup.sh installs libcap2-bin: a missing capsh is a broken
  // setup, not a reason to skip.
  ASSERT_TRUE(have_capsh()) << "capsh missing (apt-get install libcap2-bin)";
  // tracefs is mounted here already, so CAP_SYS_ADMIN is not needed.
  auto ok = trace_with_caps({"cap_bpf", "cap_perfmon", "cap_dac_read_search", "cap_sys_ptrace"});
  EXPECT_EQ(ok.status, 0) << describe(ok);
  for (std::string missing : {"cap_bpf", "cap_perfmon"}) {
    std::string keep = missing == "cap_bpf" ? "cap_perfmon" : "cap_bpf";
    auto r = trace_with_caps({keep, "cap_dac_read_search", "cap_sys_ptrace"});
    EXPECT_NE(r.status, 0) << describe(r);
    EXPECT_EQ(count_lines(r.err), 1u) << describe(r);
    std::string upper = missing == "cap_bpf" ? "CAP_BPF" : "CAP_PERFMON";
    EXPECT_TRUE(has(r.err, upper)) << describe(r);
  }
}

}  // namespace
