// `vmatrace replay FILE --lineage ADDR`: where the VMA covering ADDR came
// from. Replays the recording collecting every VMA change event into a
// LineageLog (report/lineage.h), then prints the VMA's history.

#include <cstdio>
#include <map>

#include "cli/commands/commands.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "report/lineage.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {

int run_lineage(const ReplayOptions& opts) {
  RecordingReader reader = open_recording(opts.path);
  const uint64_t base = time_origin(opts.path);
  uint64_t addr = 0;
  try {
    size_t used = 0;
    addr = std::stoull(*opts.lineage, &used, 16);
    if (used != opts.lineage->size()) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    throw UserError("bad address '" + *opts.lineage + "' for --lineage: give it in hex (0x7f12...)");
  }
  std::optional<uint64_t> at;
  if (opts.at) at = parse_moment(*opts.at, base);
  Pipeline pipeline;
  pipeline.processor().set_infer_only(opts.infer_vma_changes);
  LineageLog log;
  pipeline.add_sink(&log);
  const uint64_t records =
      pipeline.run(reader, [&](const DecodedRecord& d) { return !(at && d.hdr.ts > *at && d.type != VMAT_REC_NOTE); });
  // The layouts at the end (or at --at): of those that ended, then of those still alive.
  std::map<uint32_t, std::pair<Layout, std::string>> final = log.ended();
  for (const auto* p : pipeline.processor().processes())
    if (p->seeded) final[p->pid] = {p->layout, p->comm};

  int found = 0;
  for (const auto& [pid, fin] : final) {
    if (opts.print.pid && pid != *opts.print.pid) continue;
    const auto lines = log.lines(pid, fin.first, fin.second, addr, base);
    if (lines.empty()) continue;
    found++;
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
  }
  if (!found) throw UserError("no VMA covers " + *opts.lineage + (at ? " at " + *opts.at : " at the end"));
  return replayed_status(reader, records);
}

}  // namespace vmatrace
