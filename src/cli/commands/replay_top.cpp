// `vmatrace replay FILE --top [--speed X]`: the recording played back in the
// live view of `top`, at X times the speed it was recorded. The records go
// through the same Pipeline as live tracing (rss stage, malloc stage from
// the recorded stacks) into the same sinks (TopView, LineageLog); only the
// feed differs: records are applied when the played clock reaches them.

#include <time.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>

#include "cli/commands/commands.h"
#include "cli/commands/top_screen.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "report/lineage.h"
#include "report/malloc_report.h"
#include "report/top_view.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

class ReplayFeed : public TopFeed {
 public:
  ReplayFeed(RecordingReader& reader, Pipeline& pipeline, double speed, uint64_t start)
      : reader_(reader), pipeline_(pipeline), speed_(speed), start_(start), wall0_(monotonic_ns()) {}

  void step() override {
    // At most this many records per step: keys stay responsive at any speed.
    if (apply_until(now(), 20000) && !done()) {  // all that is due applied: wait for the clock
      struct timespec ts {
        0, 5'000'000
      };
      ::nanosleep(&ts, nullptr);
    }
  }
  // Everything up to the played clock (a step may have stopped short).
  void drain() override { apply_until(now(), SIZE_MAX); }
  bool done() const override { return ended_ && now() >= end_ts_; }
  // The played clock: the recording's start plus the wall time played
  // (pauses left out) times the speed.
  uint64_t now() const override {
    const uint64_t wall = (paused_at_ ? paused_at_ : monotonic_ns()) - wall0_ - paused_ns_;
    return start_ + static_cast<uint64_t>(static_cast<double>(wall) * speed_);
  }
  void set_paused(bool paused) override {
    if (paused && !paused_at_) paused_at_ = monotonic_ns();
    if (!paused && paused_at_) paused_ns_ += monotonic_ns() - paused_at_, paused_at_ = 0;
  }
  const MallocReport* malloc() const override { return &malloc_; }
  std::string describe() const override {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "replay x%g", speed_);
    return buf;
  }
  uint32_t first_pid() const override { return first_pid_; }
  MallocReport malloc_;
  uint64_t records() const { return records_; }

 private:
  RecordingReader& reader_;
  Pipeline& pipeline_;
  double speed_;
  uint64_t start_, wall0_, paused_at_ = 0, paused_ns_ = 0, records_ = 0;
  // Applies the records up to `until` (the record time), at most `max`;
  // false when it stopped for the limit (more are due now).
  bool apply_until(uint64_t until, size_t max) {
    for (size_t n = 0; n < max; n++) {
      if (!pending_ && !ended_) pending_ = reader_.next();
      if (!pending_) {
        // The recording covers up to when tracing stopped (its trailer's
        // end_ts), which may be well after the last record of a quiet process.
        if (!ended_) ended_ = true, end_ts_ = trailer_end_ts(reader_);
        return true;
      }
      auto d = pipeline_.decode(*pending_);
      if (!d) {  // malformed: counted by the pipeline, skipped
        pending_.reset();
        continue;
      }
      if (d->type != VMAT_REC_NOTE && d->hdr.ts > until) return true;
      if (!first_pid_ && d->type != VMAT_REC_NOTE) first_pid_ = d->hdr.pid;
      pipeline_.apply(*d);
      records_++;
      pending_.reset();
    }
    return false;
  }
  std::optional<std::span<const std::byte>> pending_;
  bool ended_ = false;  // the reader has no more records
  uint64_t end_ts_ = 0;
  uint32_t first_pid_ = 0;
};

}  // namespace

int run_replay_top(const ReplayOptions& opts) {
  if (!std::isfinite(opts.speed) || opts.speed <= 0)
    throw UserError("--speed must be a positive number (1: as recorded, 10: ten times faster)");
  if (!opts.top_batch) require_terminal("replay --top");
  RecordingReader reader = open_recording(opts.path);
  const uint64_t base = time_origin(opts.path);
  Pipeline pipeline;
  pipeline.enable_rss();
  enable_recorded_malloc(pipeline, opts.path, opts.symbols);
  TopView view(pipeline.processor(), pipeline.rss(), base);
  LineageLog lineage;
  pipeline.add_sink(&view);
  pipeline.add_sink(&lineage);
  // The played clock starts at the recording's time origin (when tracing began).
  ReplayFeed feed(reader, pipeline, opts.speed, base);
  pipeline.on_malloc_growth([&](const DecodedRecord&, const MallocGrowth& g) { feed.malloc_.add(g); });
  TopScreenOptions so =
      top_screen_options(opts.top_refresh, opts.top_batch, opts.top_frames, opts.top_width, opts.top_height);
  // --pid, or the process attached to, else the first one in the stream.
  so.main_pid = opts.print.pid.value_or(reader.header().pids.empty() ? 0 : reader.header().pids[0]);
  const int status = run_top_screen(view, lineage, pipeline.processor(), feed, so);
  if (status) return status;
  return feed.done() ? replayed_status(reader, feed.records()) : 0;
}

}  // namespace vmatrace
