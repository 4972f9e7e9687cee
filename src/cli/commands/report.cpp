// `vmatrace report FILE --faults`: the recording replayed through the same
// Processor and FaultReport that `trace --summary` feeds live.
#include <cmath>
#include <cstdio>

#include "cli/commands/commands.h"
#include "core/decode.h"
#include "record/reader.h"
#include "report/fault_report.h"
#include "trace/errors.h"

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
