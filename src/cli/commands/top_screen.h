#pragma once
// The terminal side of the live view, shared by `top` (fed by a live
// session) and `replay FILE --top` (fed by a recording played back): the
// ncurses screen, the keys, the lineage panel, and --batch's plain frames.
// Whatever feeds it runs the one Pipeline; TopView and LineageLog are sinks
// of it.

#include <cstddef>
#include <cstdint>
#include <string>

namespace vmatrace {

class LineageLog;
class MallocReport;
class Processor;
class TopView;

// What drives the view forward.
class TopFeed {
 public:
  virtual ~TopFeed() = default;
  // Handles what arrived (or is due), waiting up to about 10 ms.
  virtual void step() = 0;
  // Handles everything already there (before a --batch frame).
  virtual void drain() {}
  // Nothing more will arrive (the traced processes ended, the recording did).
  virtual bool done() const = 0;
  // The view's clock, in the records' time (CLOCK_MONOTONIC ns).
  virtual uint64_t now() const = 0;
  // Pausing a replay stops its clock; a live trace goes on underneath.
  virtual void set_paused(bool) {}
  virtual const MallocReport* malloc() const = 0;
  // The process to show first when none was named (0: the lowest pid).
  virtual uint32_t first_pid() const { return 0; }
  // Shown on the status line ("replay x4", ...); may be empty.
  virtual std::string describe() const { return ""; }
};

struct TopScreenOptions {
  uint64_t refresh_ns = 500'000'000;
  uint32_t main_pid = 0;  // shown first (0: the feed's first_pid())
  bool batch = false;     // plain-text frames on stdout instead of the screen
  int frames = 1;         // with batch
  size_t width = 160, height = 50;
};

// The options `top` and `replay --top` share: --refresh (at least 50 ms),
// --batch, --frames, --width, --height. main_pid is the caller's.
TopScreenOptions top_screen_options(const std::string& refresh, bool batch, int frames, size_t width, size_t height);

// Runs the view until q, Ctrl-C (SIGINT, SIGTERM, SIGHUP), or with batch
// the last frame. Returns the exit status.
int run_top_screen(TopView& view, const LineageLog& lineage, const Processor& proc, TopFeed& feed,
                   const TopScreenOptions& o);

// The error `top` and `replay --top` give when stdout is no terminal.
void require_terminal(const char* what);

}  // namespace vmatrace
