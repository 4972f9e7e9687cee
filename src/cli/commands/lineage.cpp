// `vmatrace replay FILE --lineage ADDR`: where the VMA covering ADDR came
// from. Replays the recording collecting every VMA change event (they carry
// VMA ids), then walks them backwards from the VMA's id: each change that
// produced a tracked id is part of its history, and the ids it came from
// (split from, merged from) are tracked from there on back.

#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>

#include "cli/commands/commands.h"
#include "core/proc_maps.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "util/errors.h"
#include "util/text.h"
#include "util/time.h"

namespace vmatrace {
namespace {

struct Step {
  uint64_t ts = 0;
  uint32_t tid = 0;
  std::string cause;
  VmaChange change;
};

class LineageSink : public RecordSink {
 public:
  explicit LineageSink(std::optional<uint64_t> at) : at_(at) {}
  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState*) override {
    if (rec.type == VMAT_EV_FORK && !applied.changes.empty())
      forked_from_[rec.fork.child_pid] = {rec.hdr.pid, rec.hdr.ts};
    if (applied.changes.empty()) return;
    // A fork's changes are the child's.
    uint32_t pid = rec.type == VMAT_EV_FORK ? rec.fork.child_pid : rec.hdr.pid;
    auto& v = steps_[pid];
    for (const auto& c : applied.changes) v.push_back({rec.hdr.ts, rec.hdr.tid, applied.cause, c});
  }
  void on_process_end(const ProcessState& p) override {
    if (p.seeded) final_[p.pid] = {p.layout, p.comm};
  }
  std::map<uint32_t, std::vector<Step>> steps_;
  std::map<uint32_t, std::pair<Layout, std::string>> final_;  // layout at exit (or at --at)
  // A traced child's parent and the moment of the fork: dup_mmap() copied
  // the parent's VMAs, and the child's copies keep the parent's ids.
  std::map<uint32_t, std::pair<uint32_t, uint64_t>> forked_from_;
  std::optional<uint64_t> at_;
};

std::string vma_str(const Vma& v, const Layout& l) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "#%" PRIu64 " %" PRIx64 "-%" PRIx64 " %s", v.id, v.start, v.end, v.perms().c_str());
  std::string s = buf;
  if (!v.id) s.replace(0, 2, "#-");  // a split piece that never stood on its own
  std::string name = maps_name(l, v);
  if (!name.empty()) s += " " + escape_text(name);
  return s;
}

// What the step did to the tracked VMA, in words.
std::string describe(const Step& s, const Layout& l) {
  const auto& c = s.change;
  std::string out = vma_change_kind_name(c.kind);
  out += ' ';
  for (size_t i = 0; i < c.from.size(); i++) out += (i ? " + " : "") + vma_str(c.from[i], l);
  if (!c.from.empty() && !c.to.empty()) out += " -> ";
  for (size_t i = 0; i < c.to.size(); i++) out += (i ? ", " : "") + vma_str(c.to[i], l);
  return out;
}

}  // namespace

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
  LineageSink sink(at);
  pipeline.add_sink(&sink);
  const uint64_t records =
      pipeline.run(reader, [&](const DecodedRecord& d) { return !(at && d.hdr.ts > *at && d.type != VMAT_REC_NOTE); });
  // Still alive at the end (or at --at): their layout now.
  for (const auto* p : pipeline.processor().processes())
    if (p->seeded) sink.final_[p->pid] = {p->layout, p->comm};

  int found = 0;
  for (const auto& [pid, fin] : sink.final_) {
    if (opts.print.pid && pid != *opts.print.pid) continue;
    const Layout& l = fin.first;
    const Vma* v = l.find(addr);
    if (!v) continue;
    found++;
    std::printf("# lineage of %" PRIx64 " in %u (%s): #%" PRIu64 " %" PRIx64 "-%" PRIx64 " %s %s\n", addr, pid,
                escape_text(fin.second).c_str(), v->id, v->start, v->end, v->perms().c_str(),
                escape_text(maps_name(l, *v)).c_str());
    std::set<uint64_t> tracked{v->id};
    struct Found {
      const Step* step;
      uint32_t pid;
    };
    std::vector<Found> history;
    // Backwards through this process's changes; where the history reaches
    // the fork that copied the VMA, on into the parent's, before the fork.
    uint32_t cur = pid;
    uint64_t until = UINT64_MAX;
    for (int depth = 0; depth < 64; depth++) {
      bool reached_fork = false;
      const auto& steps = sink.steps_[cur];
      for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        if (it->ts > until) continue;
        bool ours = false;
        for (const auto& t : it->change.to) ours |= t.id && tracked.count(t.id);
        if (!ours) continue;
        history.push_back({&*it, cur});
        reached_fork |= it->cause == "fork";
        for (const auto& f : it->change.from)
          if (f.id) tracked.insert(f.id);
      }
      auto parent = sink.forked_from_.find(cur);
      if (!reached_fork || parent == sink.forked_from_.end()) break;
      cur = parent->second.first;
      until = parent->second.second;
    }
    if (history.empty()) std::printf("  (no change recorded: the VMA was there when tracing began)\n");
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      const Step& s = *it->step;
      uint64_t rel = s.ts >= base ? s.ts - base : 0;
      std::string what = describe(s, l);
      if (s.cause == "fork" && sink.forked_from_.count(it->pid))
        what += " (copy of parent " + std::to_string(sink.forked_from_[it->pid].first) + "'s VMA)";
      std::printf("  +%" PRIu64 ".%06" PRIu64 "s %u %-14s %s\n", rel / 1000000000, (rel / 1000) % 1000000, s.tid,
                  s.cause.c_str(), what.c_str());
    }
  }
  if (!found) throw UserError("no VMA covers " + *opts.lineage + (at ? " at " + *opts.at : " at the end"));
  return replayed_status(reader, records);
}

}  // namespace vmatrace
