// The live view: `top -o FILE` records while showing it, `replay FILE --top`
// shows the recording in the same view, and the full-screen view itself,
// driven in a detached tmux session of fixed size (capture-pane for the
// screen, send-keys for the keys), against /proc/PID/smaps of the workload.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "e2e_util.h"
#include "util/text.h"

namespace {

using namespace std::chrono_literals;

// The checkpoints workload stopped at its first checkpoint (nothing changes).
struct StoppedWorkload {
  StoppedWorkload() : w({e2e::workload("checkpoints"), "merge"}) { e2e::wait_fully_stopped(w.pid()); }
  ~StoppedWorkload() {
    ::kill(w.pid(), SIGCONT);
    w.wait();
  }
  e2e::Subprocess w;
};

// top -o FILE records while it shows (the recorder of `record`: an existing
// FILE needs --force), and replay FILE --top shows the same frame from it.
TEST(Top, RecordsWhileShowingAndReplaysInTheSameView) {
  StoppedWorkload s;
  const pid_t pid = s.w.pid();
  ASSERT_TRUE(e2e::fully_stopped(pid)) << "checkpoints did not stop";
  e2e::TempDir dir;
  const std::string rec = dir.file("top.vmat");
  auto live = e2e::run_command(
      e2e::vmatrace_argv({"top", "--batch", "--refresh", "300ms", "-o", rec, "-p", std::to_string(pid)}));
  ASSERT_EQ(live.status, 0) << e2e::describe(live);
  const uint64_t vm_size = e2e::status_kib(pid, "VmSize"), vm_rss = e2e::status_kib(pid, "VmRSS");
  EXPECT_EQ(e2e::top_frame_kib(live.out, "VSZ"), vm_size) << live.out;
  EXPECT_NE(live.out.find("recording to " + rec), std::string::npos) << live.out;

  // The recording is whole (its trailer written at the end) and has the residency.
  auto pm = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--pmap", "--rss", "--at", "+0.25s"}));
  ASSERT_EQ(pm.status, 0) << e2e::describe(pm);
  EXPECT_NE(pm.out.find("# pmap of " + std::to_string(pid)), std::string::npos) << pm.out;

  auto replayed = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--top", "--batch", "--refresh", "300ms"}));
  ASSERT_EQ(replayed.status, 0) << e2e::describe(replayed);
  EXPECT_NE(replayed.out.find("replay x1"), std::string::npos) << replayed.out;
  EXPECT_EQ(e2e::top_frame_kib(replayed.out, "VSZ"), vm_size) << replayed.out;
  const uint64_t rss = e2e::top_frame_kib(replayed.out, "RSS");
  EXPECT_LE(std::abs(static_cast<double>(rss) - static_cast<double>(vm_rss)), 0.01 * static_cast<double>(vm_rss))
      << "VmRSS " << vm_rss << " KiB\n"
      << replayed.out;
  EXPECT_EQ(rss, e2e::top_frame_kib(live.out, "RSS")) << "live:\n" << live.out << "\nreplayed:\n" << replayed.out;

  // Several frames at 4 times the speed (50 ms of the recording's time
  // apart; it is over 300 ms long): the same layout in each.
  auto fast = e2e::run_command(e2e::vmatrace_argv(
      {"replay", rec, "--top", "--batch", "--speed", "4", "--refresh", "50ms", "--frames", "3", "--width", "100"}));
  ASSERT_EQ(fast.status, 0) << e2e::describe(fast);
  EXPECT_NE(fast.out.find("frame 3/3  replay x4"), std::string::npos) << fast.out;
  for (size_t at = fast.out.find(" VSZ "); at != std::string::npos; at = fast.out.find(" VSZ ", at + 1))
    EXPECT_EQ(std::strtoull(fast.out.c_str() + at + 5, nullptr, 10), vm_size) << fast.out;

  // An existing FILE is kept unless --force.
  auto again = e2e::run_command(
      e2e::vmatrace_argv({"top", "--batch", "--refresh", "100ms", "-o", rec, "-p", std::to_string(pid)}));
  EXPECT_NE(again.status, 0) << e2e::describe(again);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << e2e::describe(again);
  auto forced = e2e::run_command(
      e2e::vmatrace_argv({"top", "--batch", "--refresh", "100ms", "-o", rec, "--force", "-p", std::to_string(pid)}));
  EXPECT_EQ(forced.status, 0) << e2e::describe(forced);

  // Bad input: one line naming the problem.
  auto tty = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--top"}));
  EXPECT_NE(tty.status, 0);
  EXPECT_NE(tty.err.find("replay --top: stdout is not a terminal: use --batch"), std::string::npos)
      << e2e::describe(tty);
  auto speed = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--top", "--batch", "--speed", "0"}));
  EXPECT_NE(speed.status, 0);
  EXPECT_NE(speed.err.find("--speed must be a positive number"), std::string::npos) << e2e::describe(speed);
  auto alone = e2e::run_command(e2e::vmatrace_argv({"replay", rec, "--speed", "4"}));
  EXPECT_NE(alone.status, 0);
  EXPECT_NE(alone.err.find("--speed and --batch go with --top"), std::string::npos) << e2e::describe(alone);
}

// A tmux server of our own (its own socket), killed at the end.
class Tmux {
 public:
  Tmux() : socket_("vmatrace-e2e-" + std::to_string(::getpid())) {}
  ~Tmux() { run({"kill-server"}); }
  e2e::RunResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-L", socket_, "-f", "/dev/null"});
    return e2e::run_command(args, 20s);
  }
  std::string capture() { return run({"capture-pane", "-p", "-t", "top"}).out; }
  void keys(const std::string& k) { run({"send-keys", "-t", "top", k}); }
  // Waits until the screen satisfies ok (up to 15 s); returns the last capture.
  std::string wait_for(const std::function<bool(const std::string&)>& ok) {
    std::string screen;
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      screen = capture();
      if (ok(screen)) break;
      std::this_thread::sleep_for(100ms);
    }
    return screen;
  }

 private:
  std::string socket_;
};

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The VMA row of the screen for the VMA starting at start ("" when none).
std::string row_of(const std::string& screen, uint64_t start) {
  char addr[32];
  std::snprintf(addr, sizeof(addr), "%016" PRIx64, start);
  for (const auto& l : e2e::split_lines(screen))
    if (contains(l, addr)) return l;
  return "";
}

// The address on the picked row (the line the view marks with '>').
std::string picked_address(const std::string& screen) {
  for (const auto& l : e2e::split_lines(screen)) {
    if (l.empty() || l[0] != '>') continue;
    std::istringstream fields(l.substr(1));
    std::string tok;
    while (fields >> tok)
      if (tok.size() == 16 && tok.find_first_not_of("0123456789abcdef") == std::string::npos) return tok;
  }
  return "";
}

struct SmapsVma {
  uint64_t start = 0, end = 0, rss = 0;
};

std::vector<SmapsVma> smaps(pid_t pid) {
  std::vector<SmapsVma> out;
  for (const auto& l : e2e::split_lines(e2e::read_file("/proc/" + std::to_string(pid) + "/smaps").value_or(""))) {
    unsigned long long s = 0, e = 0, kib = 0;
    if (std::sscanf(l.c_str(), "%llx-%llx ", &s, &e) == 2 && l.find(':') > l.find(' '))
      out.push_back({s, e, 0});
    else if (!out.empty() && std::sscanf(l.c_str(), "Rss: %llu kB", &kib) == 1)
      out.back().rss = kib * 1024;
  }
  return out;
}

// `top -- rssgrowth hold`: its two 8 MiB tables (one written whole, one
// half) are on the screen with their sizes and resident sizes as smaps
// has them; s, Tab, p, the arrows with l (lineage) and Esc act; q restores
// the terminal.
TEST(Top, InteractiveViewInTmux) {
  Tmux t;
  const std::string cmd = "echo BEFORE-TOP; " + e2e::vmatrace_bin() + " top --refresh 200ms -- " +
                          e2e::workload("rssgrowth") + " hold 60; echo TOP-EXIT=$?";
  auto started = t.run({"new-session", "-d", "-s", "top", "-x", "160", "-y", "50", "sh", "-c", cmd + "; sleep 600"});
  ASSERT_EQ(started.status, 0) << "tmux is needed (scripts/setup.sh installs it)\n" << e2e::describe(started);

  // Both processes followed, the tables written.
  std::string screen =
      t.wait_for([](const std::string& s) { return contains(s, "[1/2 processes]") && contains(s, "rssgrowth"); });
  ASSERT_TRUE(contains(screen, "[1/2 processes]")) << screen;
  unsigned parent = 0;
  {
    auto at = screen.find("\npid ");
    ASSERT_NE(at, std::string::npos) << screen;
    parent = static_cast<unsigned>(std::strtoul(screen.c_str() + at + 5, nullptr, 10));
  }
  ASSERT_GT(parent, 0u);
  EXPECT_TRUE(contains(screen, "RSS by kind")) << screen;
  EXPECT_EQ(t.run({"display-message", "-p", "-t", "top", "#{alternate_on}"}).out, "1\n")
      << "top uses the alternate screen";

  // The known regions: rssgrowth's two 8 MiB tables (malloc'd: two anonymous
  // mmaps of 8 MiB + a header page, which the kernel may merge into one VMA
  // when they are adjacent), resident as smaps says (8 MiB and 4 MiB written).
  t.keys("s");  // growth -> rss
  screen = t.wait_for([](const std::string& s) { return contains(s, "VMAs by rss"); });
  ASSERT_TRUE(contains(screen, "sort rss")) << screen;
  uint64_t table_size = 0, table_rss = 0;
  for (const auto& v : smaps(static_cast<pid_t>(parent))) {
    if (v.end - v.start < (8u << 20)) continue;
    table_size += v.end - v.start;
    table_rss += v.rss;
    const std::string row = row_of(screen, v.start);
    EXPECT_TRUE(contains(row, "anonymous mmap")) << row << "\n" << screen;
    EXPECT_TRUE(contains(row, " " + vmatrace::human_size(v.end - v.start) + " ")) << row;
    EXPECT_TRUE(contains(row, " " + vmatrace::human_size(v.rss) + " ")) << "smaps Rss " << v.rss << "\n" << row;
  }
  // (a neighbouring anonymous page may have merged into them too)
  EXPECT_GE(table_size, 2 * ((8u << 20) + 4096)) << "rssgrowth's two tables are not in smaps";
  EXPECT_GE(table_rss, 12u << 20) << "8 MiB of one table and 4 MiB of the other are written";
  t.keys("s");  // rss -> size
  EXPECT_TRUE(contains(t.wait_for([](const std::string& s) { return contains(s, "VMAs by size"); }), "VMAs by size"));

  // Tab: the other process (the child), then back.
  t.keys("Tab");
  screen = t.wait_for([](const std::string& s) { return contains(s, "[2/2 processes]"); });
  ASSERT_TRUE(contains(screen, "[2/2 processes]")) << screen;
  EXPECT_FALSE(contains(screen, "\npid " + std::to_string(parent) + " ")) << screen;
  t.keys("Tab");
  screen = t.wait_for([](const std::string& s) { return contains(s, "[1/2 processes]"); });
  ASSERT_TRUE(contains(screen, "\npid " + std::to_string(parent) + " ")) << screen;

  // Pause: the frame stays as it is, so the rows do not move under the
  // picking keys. Down picks the second row; l opens its lineage, Esc goes
  // back, p resumes.
  t.keys("p");
  screen = t.wait_for([](const std::string& s) { return contains(s, "[PAUSED]"); });
  ASSERT_TRUE(contains(screen, "[PAUSED]")) << screen;
  const std::string first_pick = picked_address(screen);
  ASSERT_FALSE(first_pick.empty()) << "no row picked (a line starting with '>')\n" << screen;
  t.keys("Down");
  screen = t.wait_for([&](const std::string& s) {
    const std::string a = picked_address(s);
    return !a.empty() && a != first_pick;
  });
  std::string addr = picked_address(screen);
  ASSERT_NE(addr, first_pick) << screen;
  addr.erase(0, addr.find_first_not_of('0'));
  t.keys("l");
  screen = t.wait_for([](const std::string& s) { return contains(s, "# lineage of "); });
  EXPECT_TRUE(contains(screen, "# lineage of " + addr + " in " + std::to_string(parent))) << addr << "\n" << screen;
  EXPECT_TRUE(contains(screen, "lineage of the picked VMA")) << screen;
  t.keys("Escape");
  screen = t.wait_for([](const std::string& s) { return contains(s, "RSS by kind"); });
  EXPECT_TRUE(contains(screen, "RSS by kind")) << screen;
  EXPECT_TRUE(contains(screen, "[PAUSED]")) << screen;
  t.keys("p");
  EXPECT_FALSE(contains(t.wait_for([](const std::string& s) { return !contains(s, "[PAUSED]"); }), "[PAUSED]"));

  // q: the view ends, the shell's screen is back.
  t.keys("q");
  screen = t.wait_for([](const std::string& s) { return contains(s, "TOP-EXIT="); });
  EXPECT_TRUE(contains(screen, "TOP-EXIT=0")) << screen;
  EXPECT_TRUE(contains(screen, "BEFORE-TOP")) << screen;
  EXPECT_FALSE(contains(screen, "RSS by kind")) << screen;
  EXPECT_EQ(t.run({"display-message", "-p", "-t", "top", "#{alternate_on}"}).out, "0\n");
  // The workload was left running (detached, as after trace's Ctrl-C): end it.
  ::kill(static_cast<pid_t>(parent), SIGKILL);
  for (pid_t c : e2e::children_of(static_cast<pid_t>(parent))) ::kill(c, SIGKILL);
}

}  // namespace
