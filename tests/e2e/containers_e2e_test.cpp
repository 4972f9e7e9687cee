// Processes in containers: a workload in its own PID and mount namespaces
// (unshare), with a private /tmp bind-mounted over the host's, traced from
// the host. The model must equal its /proc maps at every stop, every event
// must carry its namespace pid/tid, and its file mapping must be named as
// the process sees it (/tmp/...), not by the host directory behind it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/proc_maps.h"
#include "e2e_util.h"
#include "trace/procfs.h"
#include "util/errors.h"

using e2e::Stop;
using e2e::TraceHarness;

namespace {

std::string comm_of(pid_t pid) {
  auto c = e2e::read_file("/proc/" + std::to_string(pid) + "/comm").value_or("?\n");
  if (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// The last NStgid of a process (its pid in its own namespace), from /proc.
uint32_t ns_pid_from_proc(pid_t pid) {
  auto status = e2e::read_file("/proc/" + std::to_string(pid) + "/status").value_or("");
  std::smatch m;
  if (!std::regex_search(status, m, std::regex(R"(\nNStgid:([\t 0-9]+))"))) return 0;
  std::string ids = m[1];
  std::smatch last;
  if (!std::regex_search(ids, last, std::regex(R"((\d+)\s*$)"))) return 0;
  return static_cast<uint32_t>(std::stoul(last[1]));
}

// `sh` as pid 1 of a new PID namespace (init ignores the SIGSTOPs the
// workload sends itself, so the workload is its child, pid 3 after mount's 2), with /tmp a
// bind mount of `tmp` visible only in the new mount namespace.
std::vector<std::string> in_container(const std::string& tmp, const std::string& workload_cmd) {
  return {"/usr/bin/unshare",
          "--pid",
          "--mount",
          "--fork",
          "--mount-proc",
          "--propagation",
          "private",
          "sh",
          "-c",
          "mount --bind " + tmp + " /tmp && " + workload_cmd + "; exit $?"};
}

// The host pid of the process called `comm` below `root`, once it exists and is fully stopped.
pid_t wait_stopped_descendant(pid_t root, const std::string& comm) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    for (pid_t p : e2e::descendants_of(root))
      if (comm_of(p) == comm && e2e::fully_stopped(p)) return p;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}

// The checkpoints workload started (untraced) in its own PID and mount
// namespaces with a private /tmp, stopped at its first checkpoint; events
// go to `json` as JSON once traced.
struct ContainerRun {
  e2e::TempDir dir;
  std::string json = dir.file("events.json");
  e2e::TempDir host_tmp;  // the container's /tmp
  std::unique_ptr<TraceHarness> harness;
  pid_t outer = 0, cp = 0;  // unshare, and the workload (host pids)

  explicit ContainerRun(const std::string& steps) {
    TraceHarness::Options o;
    o.json_events_path = json;
    harness = std::make_unique<TraceHarness>(o);
    // The workload runs from the container's /tmp: the bind mount hides the
    // host's /tmp, where the build may live (a CI clone does).
    std::filesystem::copy_file(e2e::workload("checkpoints"), host_tmp.file("checkpoints"));
    outer = harness->start_untraced(in_container(host_tmp.path(), "/tmp/checkpoints stopfirst " + steps));
    cp = wait_stopped_descendant(outer, "checkpoints");
  }
};

TEST(Containers, PidAndMountNamespaceTracedFromTheHost) {
  ContainerRun c("file merge thread fork");
  auto& harness = c.harness;
  TraceHarness& h = *harness;
  const e2e::TempDir& host_tmp = c.host_tmp;
  const std::string& json = c.json;
  const pid_t outer = c.outer, cp = c.cp;
  ASSERT_GT(cp, 0) << "the workload never reached its first stop inside the namespaces";
  const uint32_t cp_nspid = ns_pid_from_proc(cp);
  ASSERT_EQ(cp_nspid, 3u) << "the workload is not pid 3 of a new PID namespace (after sh and mount)";
  // --pidns MEMBER -p NSPID names it from the host (the member: the namespace's init).
  ASSERT_EQ(vmatrace::resolve_ns_pid(cp, 3), cp);
  const std::vector<pid_t> kids = e2e::children_of(outer);
  ASSERT_EQ(kids.size(), 1u) << "unshare --fork has one child, the namespace's sh";
  EXPECT_EQ(vmatrace::resolve_ns_pid(kids[0], 3), cp);
  EXPECT_EQ(vmatrace::resolve_ns_pid(cp, 1), kids[0]);
  EXPECT_THROW(vmatrace::resolve_ns_pid(cp, 4000000), vmatrace::UserError);

  h.attach(cp);
  int stops = 0;
  std::map<pid_t, uint32_t> nspid_at_stop;  // host pid -> its namespace pid, read while stopped
  h.run([&](const Stop& s) {
    stops++;
    nspid_at_stop[s.pid] = ns_pid_from_proc(s.pid);
    auto kernel = e2e::read_file("/proc/" + std::to_string(s.pid) + "/maps");
    ASSERT_TRUE(kernel.has_value());
    const std::string model = h.model_maps(s.pid);
    EXPECT_EQ(model, *kernel) << "stop #" << s.index << " of pid " << s.pid << ": model differs from /proc\n"
                              << e2e::diff_lines(*kernel, model, "/proc maps", "vmatrace model");
    // The file step's mapping, named as the process sees it.
    if (model.find("vmatrace-checkpoints-") != std::string::npos) {
      EXPECT_NE(model.find(" /tmp/vmatrace-checkpoints-"), std::string::npos) << model;
      EXPECT_EQ(model.find(host_tmp.path()), std::string::npos) << "the host path leaked in:\n" << model;
    }
  });
  EXPECT_EQ(h.exit_status(), 0) << "the workload failed inside the namespaces";
  // stopfirst 1 + file 1 + merge 1 + thread 2 + fork 2 (one of them the child's)
  EXPECT_EQ(stops, 7);
  ASSERT_EQ(nspid_at_stop.size(), 2u) << "the forked child was not followed to its stop";

  // Every event of the traced processes carries nspid/nstid, equal to what
  // /proc said; the thread has a namespace tid of its own.
  harness.reset();  // its printer flushes the event stream
  const std::string events = e2e::read_file(json).value_or("");
  const std::regex ids(R"re("pid":(\d+),"tid":(\d+)(,"nspid":(\d+),"nstid":(\d+))?)re");
  size_t lines = 0, with_ns = 0;
  std::set<uint32_t> thread_nstids;
  bool tmp_mmap = false;
  for (const auto& line : e2e::split_lines(events)) {
    std::smatch m;
    if (!std::regex_search(line, m, ids)) continue;
    const pid_t pid = static_cast<pid_t>(std::stoul(m[1]));
    const uint32_t tid = static_cast<uint32_t>(std::stoul(m[2]));
    if (!nspid_at_stop.count(pid)) continue;
    lines++;
    if (!m[3].matched) {
      ADD_FAILURE() << "event without nspid: " << line;
      continue;
    }
    with_ns++;
    EXPECT_EQ(std::stoul(m[4]), nspid_at_stop[pid]) << line;
    if (tid == static_cast<uint32_t>(pid))
      EXPECT_EQ(std::stoul(m[5]), nspid_at_stop[pid]) << line;
    else
      thread_nstids.insert(static_cast<uint32_t>(std::stoul(m[5])));
    if (line.find("\"event\":\"mmap\"") != std::string::npos &&
        line.find("\"path\":\"/tmp/vmatrace-checkpoints-") != std::string::npos)
      tmp_mmap = true;
  }
  EXPECT_GT(lines, 20u) << events.substr(0, 2000);
  EXPECT_EQ(with_ns, lines);
  EXPECT_FALSE(thread_nstids.empty()) << "no event of the workload's thread";
  for (uint32_t t : thread_nstids) EXPECT_LT(t, 100u) << "a namespace tid looks like a host tid";
  EXPECT_TRUE(tmp_mmap) << "no mmap of the private /tmp file named as seen inside";
}

// A file the process maps from its private /tmp (a bind mount of a host
// directory) is named as it sees it, and said once with its host path; a
// file at the same path on both sides (libc) gets no such line. Ground
// truth: the host directory the test bound, and the inode /proc shows.
TEST(Containers, HostPathOfAFileInAPrivateTmpIsSaidBesideIt) {
  ContainerRun c("file");
  auto& harness = c.harness;
  TraceHarness& h = *harness;
  const e2e::TempDir& host_tmp = c.host_tmp;
  const std::string& json = c.json;
  const pid_t cp = c.cp;
  ASSERT_GT(cp, 0) << "the workload never reached its first stop inside the namespaces";
  h.attach(cp);
  std::map<std::string, uint64_t> inode_at_stop;  // /tmp path -> inode, from /proc while stopped
  h.run([&](const Stop& s) {
    auto kernel = e2e::read_file("/proc/" + std::to_string(s.pid) + "/maps");
    ASSERT_TRUE(kernel.has_value());
    EXPECT_EQ(h.model_maps(s.pid), *kernel) << "stop #" << s.index;
    for (const auto& line : e2e::split_lines(*kernel)) {
      std::smatch m;
      if (std::regex_search(line, m, std::regex(R"(^\S+ \S+ \S+ \S+ (\d+) +(/tmp/\S+)$)")))
        inode_at_stop[m[2]] = std::stoull(m[1]);
    }
  });
  EXPECT_EQ(h.exit_status(), 0) << "the workload failed inside the namespaces";
  ASSERT_EQ(inode_at_stop.count("/tmp/checkpoints"), 1u) << "the workload's binary is not mapped from /tmp";
  ASSERT_EQ(inode_at_stop.size(), 2u) << "no file of the file step mapped from /tmp";
  harness.reset();  // its printer flushes the event stream

  const std::string events = e2e::read_file(json).value_or("");
  const std::regex said(R"re("event":"host_path".*"path":"([^"]+)","host_path":"([^"]+)".*"inode":(\d+))re");
  std::map<std::string, std::pair<std::string, uint64_t>> host_of;  // path -> (host path, inode)
  for (const auto& line : e2e::split_lines(events)) {
    std::smatch m;
    if (!std::regex_search(line, m, said)) continue;
    EXPECT_EQ(host_of.count(m[1]), 0u) << "said twice: " << line;
    host_of[m[1]] = {m[2], std::stoull(m[3])};
  }
  for (const auto& [path, inode] : inode_at_stop) {
    ASSERT_EQ(host_of.count(path), 1u) << "no host path said for " << path << "\n" << events.substr(0, 3000);
    const std::string want = host_tmp.path() + path.substr(std::string("/tmp").size());
    EXPECT_EQ(host_of[path].first, want) << path;
    EXPECT_EQ(host_of[path].second, inode) << path;
  }
  for (const auto& [path, host] : host_of)
    EXPECT_TRUE(path.starts_with("/tmp/"))
        << "a host path said for a file seen at the same path: " << path << " " << host.first;
}

std::vector<pid_t> read_pids(const std::string& file) {
  std::vector<pid_t> out;
  std::ifstream in(file);
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

// All pids the session saw, running or ended.
std::set<uint32_t> traced_pids(const vmatrace::Session& session) {
  std::set<uint32_t> traced;
  for (const auto* p : session.processor().processes()) traced.insert(p->pid);
  for (const auto& p : session.processor().ended()) traced.insert(p.pid);
  return traced;
}

// --cgroup: three processes that join the cgroup after the trace began are
// all followed (their layouts equal /proc at every stop), and processes
// started at the same time outside it are not traced at all.
TEST(Containers, CgroupFollowsProcessesThatJoinAfterTheTraceBegan) {
  e2e::Cgroup2 cg("vmatrace-e2e");
  e2e::TempDir dir;
  vmatrace::TraceOptions to;
  to.cgroup = cg.path();
  e2e::QuietSession session(std::move(to));
  EXPECT_EQ(session->attach_cgroup(), 0u);

  // Started after the trace began: a shell that moves itself into the
  // cgroup and starts three workloads there, and the same outside it.
  const std::string inside_pids = dir.file("inside"), outside_pids = dir.file("outside");
  const std::string cp = e2e::workload("checkpoints") + " merge mprotect";
  const std::string three = "for i in 1 2 3; do " + cp + " & echo $! >> ";
  e2e::Subprocess inside(
      {"sh", "-c", "echo $$ > " + cg.path() + "/cgroup.procs && " + three + inside_pids + "; done; wait"});
  e2e::Subprocess outside(
      {"sh", "-c",
       "for i in 1 2 3; do " + e2e::workload("demo") + " > /dev/null & echo $! >> " + outside_pids + "; done; wait"});

  std::map<pid_t, int> stops;  // by host pid
  const auto status = e2e::run_comparing_stops(
      *session, {&inside, &outside}, [&] { return read_pids(inside_pids); }, stops);
  session->drain();
  EXPECT_EQ(status[0], 0);
  EXPECT_EQ(status[1], 0);

  const auto in = read_pids(inside_pids), out = read_pids(outside_pids);
  ASSERT_EQ(in.size(), 3u);
  ASSERT_EQ(out.size(), 3u);
  const std::set<uint32_t> traced = traced_pids(*session);
  for (pid_t p : in) {
    EXPECT_TRUE(traced.count(static_cast<uint32_t>(p))) << "cgroup member " << p << " was not traced";
    EXPECT_EQ(stops[p], 3) << "stops of cgroup member " << p
                           << " (merge 1 + mprotect 2, as in Layout.AttachToRunningProcess)";
  }
  EXPECT_TRUE(traced.count(static_cast<uint32_t>(inside.pid()))) << "the shell that moved into the cgroup";
  for (pid_t p : out)
    EXPECT_FALSE(traced.count(static_cast<uint32_t>(p))) << "pid " << p << " outside the cgroup was traced";
  EXPECT_FALSE(traced.count(static_cast<uint32_t>(outside.pid())));
  for (uint32_t p : traced) {
    const bool ours =
        p == static_cast<uint32_t>(inside.pid()) || std::count(in.begin(), in.end(), static_cast<pid_t>(p));
    EXPECT_TRUE(ours) << "pid " << p << " traced but not in the cgroup";
  }
}

// --cgroup includes the cgroups below it: a process already in a child
// cgroup when the trace starts is attached, and one that moves itself into
// a grandchild created after the trace began is followed; a process in a
// sibling cgroup outside the traced one is not traced.
TEST(Containers, CgroupIncludesItsDescendants) {
  e2e::Cgroup2 cg("vmatrace-e2e");
  e2e::TempDir dir;
  const std::string child = cg.path() + "/child", grandchild = child + "/grandchild", sibling = cg.path() + "-sibling";
  ASSERT_EQ(::mkdir(child.c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir(sibling.c_str(), 0755), 0) << std::strerror(errno);
  struct Rmdirs {
    std::vector<std::string> dirs;
    ~Rmdirs() {
      for (const auto& d : dirs) ::rmdir(d.c_str());
    }
  } rmdirs{{grandchild, child, sibling}};

  // Before the trace: a member of the child cgroup, and one of the sibling;
  // each waits (in the shell, forking nothing) for a line on its own FIFO,
  // then runs its workload.
  const std::string go_early = dir.file("go-early"), go_sib = dir.file("go-sib");
  const std::string early_pid = dir.file("early"), sib_pid = dir.file("sib");
  ASSERT_EQ(::mkfifo(go_early.c_str(), 0600), 0) << std::strerror(errno);
  ASSERT_EQ(::mkfifo(go_sib.c_str(), 0600), 0) << std::strerror(errno);
  const std::string cp = e2e::workload("checkpoints") + " merge mprotect";
  e2e::Subprocess early({"sh", "-c",
                         "echo $$ > " + child + "/cgroup.procs && echo $$ > " + early_pid + " && read go < " +
                             go_early + " && exec " + cp});
  e2e::Subprocess sib({"sh", "-c",
                       "echo $$ > " + sibling + "/cgroup.procs && echo $$ > " + sib_pid + " && read go < " + go_sib +
                           " && exec " + e2e::workload("demo") + " > /dev/null"});
  for (int i = 0; i < 500 && (read_pids(early_pid).empty() || read_pids(sib_pid).empty()); i++) ::usleep(10000);
  ASSERT_EQ(read_pids(early_pid).size(), 1u) << "the child cgroup's member did not start";
  ASSERT_EQ(read_pids(sib_pid).size(), 1u) << "the sibling cgroup's member did not start";

  vmatrace::TraceOptions to;
  to.cgroup = cg.path();
  e2e::QuietSession session(std::move(to));
  EXPECT_EQ(session->attach_cgroup(), 1u) << "the child cgroup's member, attached at start";

  // After the trace began: a grandchild cgroup, and a shell that moves
  // itself there and starts the workload.
  ASSERT_EQ(::mkdir(grandchild.c_str(), 0755), 0) << std::strerror(errno);
  const std::string late_pid = dir.file("late");
  e2e::Subprocess late(
      {"sh", "-c",
       "echo $$ > " + grandchild + "/cgroup.procs || exit 1; " + cp + " & echo $! > " + late_pid + "; wait"});
  for (const auto& fifo : {go_early, go_sib}) std::ofstream(fifo) << "go\n";
  std::map<pid_t, int> stops;
  const auto status = e2e::run_comparing_stops(
      *session, {&early, &sib, &late},
      [&] {
        auto v = read_pids(late_pid);
        v.push_back(early.pid());
        return v;
      },
      stops);
  EXPECT_EQ(status[0], 0);
  EXPECT_EQ(status[1], 0);
  EXPECT_EQ(status[2], 0);

  const std::set<uint32_t> traced = traced_pids(*session);
  const auto late_pids = read_pids(late_pid);
  ASSERT_EQ(late_pids.size(), 1u);
  for (pid_t p : {early.pid(), late_pids[0]}) {
    EXPECT_TRUE(traced.count(static_cast<uint32_t>(p)))
        << "pid " << p << " below the cgroup was not traced (early " << early.pid() << ", late " << late_pids[0] << ")";
    EXPECT_EQ(stops[p], 3) << "stops of pid " << p << " (merge 1 + mprotect 2)";
  }
  EXPECT_FALSE(traced.count(static_cast<uint32_t>(sib.pid()))) << "the sibling cgroup's member was traced";
}

// Bad --cgroup paths: one clear line each, non-zero exit.
TEST(Containers, CgroupThatIsNotThereOrNotV2SaysSo) {
  auto r = e2e::run_command(e2e::vmatrace_argv({"trace", "--cgroup", "/sys/fs/cgroup/no-such-group-here"}));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--cgroup /sys/fs/cgroup/no-such-group-here: No such file or directory"), std::string::npos)
      << r.err;
  auto v1 = e2e::run_command(e2e::vmatrace_argv({"trace", "--cgroup", "/proc"}));
  EXPECT_NE(v1.status, 0);
  EXPECT_NE(v1.err.find("--cgroup /proc: not a cgroup v2 directory"), std::string::npos) << v1.err;
  auto both = e2e::run_command(e2e::vmatrace_argv({"trace", "--cgroup", "/proc", "-p", "1"}));
  EXPECT_NE(both.status, 0);
  EXPECT_NE(both.err.find("give one of -p PID, --cgroup PATH, --comm NAME or -- CMD"), std::string::npos) << both.err;
}

// --comm NAME: a program started under that name after the trace began is
// traced from its exec (layout equal to /proc at each stop); one started at
// the same time under another name is not.
TEST(Containers, CommTracesProgramsOfThatNameAsTheyStart) {
  e2e::TempDir dir;
  const std::string name = "vtc" + std::to_string(::getpid() % 1000000);  // unique, under 16 bytes
  const std::string named = dir.file(name);
  ASSERT_EQ(::symlink(e2e::workload("checkpoints").c_str(), named.c_str()), 0);  // comm: the link's name
  vmatrace::TraceOptions to;
  to.loader.comm = name;
  e2e::QuietSession session(std::move(to));

  e2e::Subprocess wanted({named, "merge", "mprotect"});
  e2e::Subprocess other({e2e::workload("demo")});
  std::map<pid_t, int> stops;
  const auto status = e2e::run_comparing_stops(
      *session, {&wanted, &other}, [&] { return std::vector<pid_t>{wanted.pid()}; }, stops);
  EXPECT_EQ(status[0], 0);
  EXPECT_EQ(status[1], 0);
  const std::set<uint32_t> traced = traced_pids(*session);
  EXPECT_EQ(traced, std::set<uint32_t>{static_cast<uint32_t>(wanted.pid())});
  EXPECT_EQ(stops[wanted.pid()], 3) << "merge 1 + mprotect 2";
}

// A process that starts and ends in a new PID namespace faster than the
// frontend reads /proc: its ids come from the kernel at its fork, so every
// one of its events still carries them (it is pid 1 there), live and in
// the replay of the recording made in the same run.
TEST(Containers, ShortLivedProcessInANewPidNamespaceHasItsNamespacePid) {
  e2e::TempDir dir;
  const std::string rec = dir.file("ns.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"trace", "--json", "-o", rec, "--", "/usr/bin/unshare", "--pid",
                                                "--fork", "--mount-proc", e2e::workload("demo")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  for (const std::string* out : {&r.out, &replay.out}) {
    size_t demo = 0, with_ns = 0, unshare_with_ns = 0;
    for (const auto& line : e2e::split_lines(*out)) {
      const bool ns = line.find("\"nspid\":1,\"nstid\":1,") != std::string::npos;
      if (line.find("\"comm\":\"demo\"") != std::string::npos) {
        demo++;
        with_ns += ns;
      } else if (line.find("\"comm\":\"unshare\"") != std::string::npos &&
                 line.find("\"nspid\"") != std::string::npos) {
        // unshare's child before its exec is in the namespace too; unshare itself is not.
        unshare_with_ns += line.find("\"event\":\"fork\"") != std::string::npos;
      }
    }
    EXPECT_GT(demo, 50u) << out->substr(0, 3000);
    EXPECT_EQ(with_ns, demo) << "demo's events without nspid 1";
    EXPECT_EQ(unshare_with_ns, 0u) << "the fork is unshare's own (host namespace) event";
  }
  auto json_lines = [](const std::string& out) {  // the workload prints to the same stdout live
    std::vector<std::string> v;
    for (const auto& l : e2e::split_lines(out))
      if (!l.empty() && l[0] == '{') v.push_back(l);
    return v;
  };
  EXPECT_EQ(json_lines(r.out), json_lines(replay.out)) << "live and replayed output differ";
}

// A namespace pid that is not there: one clear line, non-zero exit.
TEST(Containers, PidnsWithAnUnknownPidSaysSo) {
  auto r = e2e::run_command(e2e::vmatrace_argv({"trace", "--pidns", std::to_string(getpid()), "-p", "3999999"}));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("no process with pid 3999999 in the PID namespace of pid"), std::string::npos) << r.err;
  auto n = e2e::run_command(e2e::vmatrace_argv({"trace", "--pidns", "3999999", "-p", "1"}));
  EXPECT_NE(n.status, 0);
  EXPECT_NE(n.err.find("--pidns 3999999: no process with that pid"), std::string::npos) << n.err;
}

}  // namespace
