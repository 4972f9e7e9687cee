// `vmatrace report FILE --faults`: the recording replayed through the same
// Processor and FaultReport that `trace --summary` feeds live.
#include <cmath>
#include <cstdio>

#include "cli/commands/commands.h"
#include "core/syscall_names.h"
#include "record/reader.h"
#include "report/fault_report.h"
#include "report/malloc_report.h"
#include "sym/malloc_tracker.h"
#include "util/errors.h"

namespace vmatrace {

uint64_t parse_interval(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = s.substr(used);
  double scale = unit == "s" || unit.empty() ? 1e9 : unit == "ms" ? 1e6 : unit == "us" ? 1e3 : unit == "ns" ? 1 : -1;
  if (!used || scale < 0 || !(v > 0) || !std::isfinite(v) || v * scale < 1)
    throw UserError("bad interval '" + s + "': use e.g. 100ms, 1s, 250us");
  return static_cast<uint64_t>(std::llround(v * scale));
}

namespace {

// `report FILE --malloc`: every malloc_growth of the recording, unwound and
// attributed again from its raw stacks, ranked by call site.
int run_malloc_report(const ReportOptions& opts, RecordingReader& reader) {
  Processor proc;
  proc.set_keep_ended(false);
  MallocTracker tracker(/*live=*/false);
  MallocReport report;
  uint64_t records = 0, stacks = 0;
  while (auto rec = reader.next()) {
    std::string err;
    auto d = decode_record(*rec, &err);
    if (!d) continue;
    records++;
    if (d->type == VMAT_EV_USER_STACK) stacks++;
    tracker.before_apply(*d, proc);
    proc.apply(*d, nullptr);
    if (auto g = tracker.after_apply(*d, proc))
      if (!opts.pid || g->pid == *opts.pid) report.add(*g);
  }
  if (stacks == 0)
    std::fprintf(stderr, "vmatrace: %s has no user stacks: record it with --malloc=stack (the default)\n",
                 opts.path.c_str());
  std::string out = opts.json ? report.json(opts.top) + "\n" : report.text(opts.top);
  std::fputs(out.c_str(), stdout);
  const auto& st = reader.status();
  if (st.state != ReadStatus::State::Clean && st.state != ReadStatus::State::Reading) {
    std::fprintf(stderr, "vmatrace: %s; reported %llu records up to there\n", st.message.c_str(),
                 static_cast<unsigned long long>(records));
    return 3;
  }
  return stacks == 0 ? 1 : 0;
}

}  // namespace

int run_report(const ReportOptions& opts) {
  FaultReportOptions fo;
  fo.pid = opts.pid;
  fo.top = opts.top;
  fo.interval_ns = parse_interval(opts.interval);
  RecordingReader reader = [&] {
    try {
      return RecordingReader::open(opts.path);
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
  }();
  if (opts.malloc) return run_malloc_report(opts, reader);
  FaultReport report(fo);
  Processor proc;
  proc.set_keep_ended(false);
  uint64_t records = 0;
  while (auto rec = reader.next()) {
    std::string err;
    auto d = decode_record(*rec, &err);
    if (!d) continue;
    records++;
    proc.apply(*d, &report);
  }
  proc.finish(&report);
  std::string out = opts.json ? report.json() + "\n" : opts.folded ? report.folded() : report.text();
  std::fputs(out.c_str(), stdout);
  const auto& st = reader.status();
  if (st.state != ReadStatus::State::Clean && st.state != ReadStatus::State::Reading) {
    std::fprintf(stderr, "vmatrace: %s; reported %llu records up to there\n", st.message.c_str(),
                 static_cast<unsigned long long>(records));
    return 3;
  }
  return 0;
}

}  // namespace vmatrace
