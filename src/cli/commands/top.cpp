// `vmatrace top`: a live full-screen view (ncurses) of the traced processes:
// VSZ and RSS by kind, the VMAs that grew most, malloc growth call sites,
// the last events. --batch prints plain frames instead (scripts, tests).
// The frames themselves are report/top_view.*, the screen and its keys
// top_screen.*; this file starts the session that feeds them.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "cli/commands/top_screen.h"
#include "report/lineage.h"
#include "report/top_view.h"
#include "trace/session.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

struct TopArgs {
  int pid = 0;
  std::vector<std::string> command;
  std::string refresh = "500ms", record_out;
  bool batch = false, force = false;
  int frames = 1;
  size_t width = 160, height = 50;
};

// The view fed by a live session: its pipeline applies every record.
class LiveFeed : public TopFeed {
 public:
  explicit LiveFeed(Session& s) : s_(s) {}
  void step() override {
    if (!s_.done()) s_.step(10);
  }
  void drain() override { s_.drain(); }
  bool done() const override { return s_.done(); }
  uint64_t now() const override { return monotonic_ns(); }
  const MallocReport* malloc() const override { return s_.malloc_report(); }
  std::string describe() const override { return record_; }
  std::string record_;  // "recording to FILE" with -o

 private:
  Session& s_;
};

// Changes kept per process for the lineage panel (the most recent).
constexpr size_t kLiveLineageSteps = 20000;

int run_top(TopArgs& a) {
  if (a.pid && !a.command.empty()) throw UserError("give either -p PID or -- CMD, not both");
  if (!a.pid && a.command.empty()) throw UserError("nothing to watch: give -p PID or -- CMD ARGS");
  if (!a.batch) require_terminal("top");
  TopScreenOptions so = top_screen_options(a.refresh, a.batch, a.frames, a.width, a.height);
  TraceOptions o;
  o.quiet = true;
  o.summary = false;
  o.print.events = false;
  o.rss = true;
  o.record_path = a.record_out;  // the same recorder as `record -o` (O_EXCL unless --force)
  o.force = a.force;
  if (a.pid) o.pid = a.pid;
  o.command = a.command;
  FILE* devnull = std::fopen("/dev/null", "w");
  if (!devnull) throw UserError("top: cannot open /dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> devnull_closer(devnull, &std::fclose);
  o.out = devnull;
  Session session(std::move(o));
  TopView view(session.processor(), session.rss(), monotonic_ns());
  LineageLog lineage(kLiveLineageSteps);
  session.add_sink(&view);
  session.add_sink(&lineage);
  session.on_malloc_growth([](const MallocGrowth&) {});  // unwinds growths live: the call sites panel
  so.main_pid = static_cast<uint32_t>(a.pid);
  if (a.pid)
    session.attach(a.pid);
  else
    so.main_pid = static_cast<uint32_t>(session.spawn(a.command));
  LiveFeed feed(session);
  if (!a.record_out.empty()) feed.record_ = "recording to " + a.record_out;
  const int status = run_top_screen(view, lineage, session.processor(), feed, so);
  // Detach (a command started with -- runs on, as after trace's Ctrl-C) and
  // close the recording with its trailer.
  if (!session.done()) session.stop();
  session.finish();
  return status;
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
  top->add_option("-o,--output", a->record_out,
                  "record to this file while showing the view (as record --rss -o; replay FILE --top plays it)");
  top->add_flag("--force", a->force, "with -o: overwrite an existing recording");
  top->add_option("command", a->command, "command to run and watch (after --)");
  return {top, [a] { return run_top(*a); }};
}

}  // namespace vmatrace
