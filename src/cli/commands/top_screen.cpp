#include "cli/commands/top_screen.h"

#include <curses.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/processor.h"
#include "report/lineage.h"
#include "report/top_view.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

std::atomic<int> g_quit{0};
void on_quit_signal(int sig) { g_quit.store(sig); }

// Restores the terminal however the view ends (q, Ctrl-C, an exception).
class Screen {
 public:
  Screen() {
    if (!initscr()) throw UserError("top: cannot initialise the terminal (TERM=" + term() + ")");
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    set_escdelay(25);  // Esc closes the lineage panel: no second's wait for a sequence
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

void draw_lines(const std::vector<std::string>& lines, size_t from, int y0) {
  int y = y0;
  for (size_t i = from; i < lines.size() && y < LINES; i++)
    mvaddnstr(y++, 0, lines[i].c_str(), static_cast<int>(std::min<size_t>(lines[i].size(), static_cast<size_t>(COLS))));
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

}  // namespace

TopScreenOptions top_screen_options(const std::string& refresh, bool batch, int frames, size_t width, size_t height) {
  TopScreenOptions so;
  so.refresh_ns = std::max<uint64_t>(parse_interval(refresh), 50'000'000);
  so.batch = batch;
  so.frames = frames;
  so.width = width;
  so.height = height;
  return so;
}

void require_terminal(const char* what) {
  if (!::isatty(STDOUT_FILENO))
    throw UserError(std::string(what) + ": stdout is not a terminal: use --batch for plain-text frames");
}

int run_top_screen(TopView& view, const LineageLog& lineage, const Processor& proc, TopFeed& feed,
                   const TopScreenOptions& o) {
  struct sigaction sa {};
  sa.sa_handler = on_quit_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);

  TopSort sort = TopSort::kGrowth;
  size_t pick = 0;  // which followed process is shown
  auto shown_pid = [&]() -> uint32_t {
    auto pids = view.pids();
    if (pids.empty()) return o.main_pid ? o.main_pid : feed.first_pid();
    // The process asked for first, then the others by pid.
    auto it = std::find(pids.begin(), pids.end(), o.main_pid ? o.main_pid : feed.first_pid());
    if (it != pids.end()) std::rotate(pids.begin(), it, it + 1);
    return pids[pick % pids.size()];
  };
  auto wait_refresh = [&](uint64_t until) {
    while (!g_quit.load() && !feed.done() && feed.now() < until) feed.step();
  };

  if (o.batch) {
    for (int i = 0; i < o.frames && !g_quit.load(); i++) {
      wait_refresh(feed.now() + o.refresh_ns);
      feed.drain();
      std::string status = "frame " + std::to_string(i + 1) + "/" + std::to_string(o.frames);
      if (!feed.describe().empty()) status += "  " + feed.describe();
      std::string f = view.frame(shown_pid(), feed.now(), o.width, o.height, sort, feed.malloc(), status);
      std::fputs(f.c_str(), stdout);
      if (i + 1 < o.frames) std::fputs("\n", stdout);
      std::fflush(stdout);
      if (feed.done()) break;
    }
    return 0;
  }

  Screen screen;
  bool paused = false;
  std::vector<std::string> frame;
  uint64_t next = 0;    // when the next frame is due (the feed's clock)
  size_t selected = 0;  // the picked VMA row
  bool lineage_open = false;
  std::vector<std::string> lineage_lines;
  size_t lineage_scroll = 0;
  uint32_t frame_pid = 0;
  constexpr int kMinCols = 60, kMinLines = 12;
  auto open_lineage = [&] {
    const auto& shown = view.shown_vmas();
    lineage_lines.clear();
    lineage_scroll = 0;
    lineage_open = true;
    const ProcessState* p = proc.process(frame_pid);
    if (shown.empty() || !p || !p->seeded) {
      lineage_lines.push_back("no VMA picked (pid " + std::to_string(frame_pid) + " has no layout now)");
      return;
    }
    const uint64_t addr = shown[std::min(selected, shown.size() - 1)];
    lineage_lines = lineage.lines(frame_pid, p->layout, p->comm, addr, view.start_ts());
    if (lineage_lines.empty()) lineage_lines.push_back("the picked VMA is gone (unmapped since the frame was drawn)");
  };
  while (!g_quit.load()) {
    feed.step();
    const uint64_t now = feed.now();
    int key = getch();
    bool redraw = false;
    if (key == 'q' || key == 'Q') break;
    if (key == 'p' || key == ' ') paused = !paused, feed.set_paused(paused), redraw = true;
    if (lineage_open) {
      if (key == 'l' || key == 27 || key == KEY_BACKSPACE || key == KEY_LEFT) lineage_open = false, redraw = true;
      if ((key == KEY_UP || key == 'k') && lineage_scroll) lineage_scroll--, redraw = true;
      if ((key == KEY_DOWN || key == 'j') && lineage_scroll + 1 < lineage_lines.size()) lineage_scroll++, redraw = true;
    } else {
      if (key == 's')
        sort = sort == TopSort::kGrowth ? TopSort::kRss
               : sort == TopSort::kRss  ? TopSort::kSize
                                        : TopSort::kGrowth,
        redraw = true, frame.clear();
      if (key == '\t' || key == 'n') pick++, selected = 0, redraw = true, frame.clear();
      if ((key == KEY_UP || key == 'k') && selected) selected--, redraw = true;
      if ((key == KEY_DOWN || key == 'j') && selected + 1 < view.shown_vmas().size()) selected++, redraw = true;
      if (key == 'l' || key == '\n' || key == KEY_ENTER || key == KEY_RIGHT) open_lineage(), redraw = true;
    }
    if (key == KEY_RESIZE) redraw = true, frame.clear();
    if (now < next && !redraw) continue;
    if (now >= next) next = now + o.refresh_ns;
    erase();
    if (LINES < kMinLines || COLS < kMinCols) {
      mvaddnstr(0, 0,
                ("terminal too small: top needs " + std::to_string(kMinCols) + "x" + std::to_string(kMinLines)).c_str(),
                COLS);
      refresh();
      continue;
    }
    if (lineage_open) {
      const std::string head =
          "lineage of the picked VMA in pid " + std::to_string(frame_pid) + "   l/Esc back  up/down scroll  q quit";
      mvaddnstr(0, 0, head.c_str(), COLS);
      draw_lines(lineage_lines, lineage_scroll, 2);
      refresh();
      continue;
    }
    // A new frame when one is due (not while paused), or when sorting,
    // the process or the size changed.
    if ((!paused && !redraw) || frame.empty()) {
      const auto pids = view.pids();
      std::string status = "[" + std::to_string(pids.empty() ? 0 : pick % pids.size() + 1) + "/" +
                           std::to_string(pids.size()) + " processes]  sort " + top_sort_name(sort);
      if (!feed.describe().empty()) status += "  " + feed.describe();
      if (feed.done()) status += "  (ended)";
      status += "   q quit  p pause  s sort  tab next process  up/down pick  l lineage";
      frame_pid = shown_pid();
      frame = split_lines(view.frame(frame_pid, now, static_cast<size_t>(COLS), static_cast<size_t>(LINES), sort,
                                     feed.malloc(), status));
      if (!view.shown_vmas().empty()) selected = std::min(selected, view.shown_vmas().size() - 1);
    }
    draw_lines(frame, 0, 0);
    if (!view.shown_vmas().empty()) {
      const int y = static_cast<int>(view.first_vma_line() + selected);
      if (y < LINES) {
        mvaddch(y, 0, '>');
        mvchgat(y, 0, -1, A_REVERSE, 0, nullptr);
      }
    }
    if (paused) mvaddnstr(0, std::max(0, COLS - 8), "[PAUSED]", 8);
    refresh();
  }
  return 0;
}

}  // namespace vmatrace
