// `vmatrace top`: a live full-screen view (ncurses) of the traced processes:
// VSZ and RSS by kind, the VMAs that grew most, malloc growth call sites,
// the last events. --batch prints plain frames instead (scripts, tests).
// The frames themselves are report/top_view.*; this file is the terminal.
#include <curses.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "report/top_view.h"
#include "trace/session.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

std::atomic<int> g_quit{0};
void on_quit_signal(int sig) { g_quit.store(sig); }

struct TopArgs {
  int pid = 0;
  std::vector<std::string> command;
  std::string refresh = "500ms", record_out;
  bool batch = false, force = false;
  int frames = 1;
  size_t width = 160, height = 50;
};

// Restores the terminal however the view ends (q, Ctrl-C, an exception).
class Screen {
 public:
  Screen() {
    if (!initscr()) throw UserError("top: cannot initialise the terminal (TERM=" + term() + ")");
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(0);
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

 private:
  static std::string term() {
    const char* t = std::getenv("TERM");
    return t ? t : "";
  }
};

int run_top(TopArgs& a) {
  if (a.pid && !a.command.empty()) throw UserError("give either -p PID or -- CMD, not both");
  if (!a.pid && a.command.empty()) throw UserError("nothing to watch: give -p PID or -- CMD ARGS");
  if (!a.batch && !::isatty(STDOUT_FILENO))
    throw UserError("top: stdout is not a terminal: use --batch for plain-text frames");
  const uint64_t refresh_ns = std::max<uint64_t>(parse_interval(a.refresh), 50'000'000);
  TraceOptions o;
  o.quiet = true;
  o.summary = false;
  o.print.events = false;
  o.rss = true;
  o.record_path = a.record_out;
  o.force = a.force;
  if (a.pid) o.pid = a.pid;
  o.command = a.command;
  FILE* devnull = std::fopen("/dev/null", "w");
  if (!devnull) throw UserError("top: cannot open /dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> devnull_closer(devnull, &std::fclose);
  o.out = devnull;
  Session session(std::move(o));
  TopView view(session.processor(), session.rss(), monotonic_ns());
  session.add_sink(&view);
  session.on_malloc_growth([](const MallocGrowth&) {});  // unwinds growths live: the call sites panel
  uint32_t main_pid = static_cast<uint32_t>(a.pid);
  if (a.pid)
    session.attach(a.pid);
  else
    main_pid = static_cast<uint32_t>(session.spawn(a.command));
  struct sigaction sa {};
  sa.sa_handler = on_quit_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);

  TopSort sort = TopSort::kGrowth;
  size_t pick = 0;  // which followed process is shown
  auto shown_pid = [&]() -> uint32_t {
    auto pids = view.pids();
    if (pids.empty()) return main_pid;
    // The process asked for first, then the others by pid.
    auto it = std::find(pids.begin(), pids.end(), main_pid);
    if (it != pids.end()) std::rotate(pids.begin(), it, it + 1);
    return pids[pick % pids.size()];
  };
  auto wait_refresh = [&](uint64_t until) {
    while (!g_quit.load() && !session.done() && monotonic_ns() < until) session.step(10);
  };

  if (a.batch) {
    for (int i = 0; i < a.frames && !g_quit.load(); i++) {
      wait_refresh(monotonic_ns() + refresh_ns);
      session.drain();
      const uint32_t pid = shown_pid();
      std::string f = view.frame(pid, monotonic_ns(), a.width, a.height, sort, session.malloc_report(),
                                 "frame " + std::to_string(i + 1) + "/" + std::to_string(a.frames));
      std::fputs(f.c_str(), stdout);
      if (i + 1 < a.frames) std::fputs("\n", stdout);
      std::fflush(stdout);
      if (session.done()) break;
    }
    return 0;
  }

  Screen screen;
  bool paused = false;
  std::string frame;
  uint64_t next = 0;
  constexpr int kMinCols = 60, kMinLines = 12;
  while (!g_quit.load()) {
    const uint64_t now = monotonic_ns();
    if (!session.done()) session.step(10);
    int key = getch();
    bool redraw = false;
    if (key == 'q' || key == 'Q') break;
    if (key == 'p' || key == ' ') paused = !paused, redraw = true;
    if (key == 's')
      sort = sort == TopSort::kGrowth ? TopSort::kRss
             : sort == TopSort::kRss  ? TopSort::kSize
                                      : TopSort::kGrowth,
      redraw = true;
    if (key == '\t' || key == 'n') pick++, redraw = true;
    if (key == KEY_RESIZE) redraw = true;
    if (now < next && !redraw) continue;
    next = now + refresh_ns;
    if (LINES < kMinLines || COLS < kMinCols) {
      erase();
      mvaddnstr(0, 0,
                ("terminal too small: top needs " + std::to_string(kMinCols) + "x" + std::to_string(kMinLines)).c_str(),
                COLS);
      refresh();
      continue;
    }
    if (!paused || frame.empty()) {
      const auto pids = view.pids();
      std::string status = "[" + std::to_string(pids.empty() ? 0 : pick % pids.size() + 1) + "/" +
                           std::to_string(pids.size()) + " processes]  sort " + top_sort_name(sort) +
                           (session.done() ? "  (ended)" : "") + "   q quit  p pause  s sort  tab next process";
      frame = view.frame(shown_pid(), now, static_cast<size_t>(COLS), static_cast<size_t>(LINES), sort,
                         session.malloc_report(), status);
    }
    erase();
    int y = 0;
    size_t at = 0;
    while (y < LINES && at < frame.size()) {
      size_t nl = frame.find('\n', at);
      if (nl == std::string::npos) nl = frame.size();
      mvaddnstr(y++, 0, frame.c_str() + at, static_cast<int>(std::min<size_t>(nl - at, static_cast<size_t>(COLS))));
      at = nl + 1;
    }
    if (paused) mvaddnstr(0, std::max(0, COLS - 8), "[PAUSED]", 8);
    refresh();
  }
  return 0;
}

}  // namespace

Command add_top_command(CLI::App& app) {
  auto a = std::make_shared<TopArgs>();
  auto* top = app.add_subcommand("top", "live full-screen view: VSZ/RSS by kind, biggest growers, last events");
  top->add_option("-p,--pid", a->pid, "watch this running process (all its threads)");
  top->add_option("--refresh", a->refresh, "time between frames (default 500ms)");
  top->add_flag("--batch", a->batch, "print plain-text frames to stdout instead of the full-screen view");
  top->add_option("--frames", a->frames, "with --batch: how many frames (default 1)")->check(CLI::PositiveNumber);
  top->add_option("--width", a->width, "with --batch: columns per frame (default 160)");
  top->add_option("--height", a->height, "with --batch: lines per frame (default 50)");
  top->add_option("-o,--output", a->record_out, "also record to this file (with --rss)");
  top->add_flag("--force", a->force, "overwrite an existing recording");
  top->add_option("command", a->command, "command to run and watch (after --)");
  return {top, [a] { return run_top(*a); }};
}

}  // namespace vmatrace
