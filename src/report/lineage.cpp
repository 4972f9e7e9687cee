#include "report/lineage.h"

#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <set>

#include "core/proc_maps.h"
#include "util/text.h"

namespace vmatrace {
namespace {

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
std::string describe(const LineageLog::Step& s, const Layout& l) {
  const auto& c = s.change;
  std::string out = vma_change_kind_name(c.kind);
  out += ' ';
  for (size_t i = 0; i < c.from.size(); i++) out += (i ? " + " : "") + vma_str(c.from[i], l);
  if (!c.from.empty() && !c.to.empty()) out += " -> ";
  for (size_t i = 0; i < c.to.size(); i++) out += (i ? ", " : "") + vma_str(c.to[i], l);
  return out;
}

}  // namespace

void LineageLog::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState*) {
  if (rec.type == VMAT_EV_FORK && !applied.changes.empty())
    forked_from_[rec.fork.child_pid] = {rec.hdr.pid, rec.hdr.ts};
  if (applied.changes.empty()) return;
  // A fork's changes are the child's.
  const uint32_t pid = rec.type == VMAT_EV_FORK ? rec.fork.child_pid : rec.hdr.pid;
  auto& v = steps_[pid];
  for (const auto& c : applied.changes) v.push_back({rec.hdr.ts, rec.hdr.tid, applied.cause, c});
  if (max_steps_ && v.size() > max_steps_) {
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() - max_steps_));
    truncated_[pid] = true;
  }
}

void LineageLog::on_process_end(const ProcessState& p) {
  if (p.seeded) final_[p.pid] = {p.layout, p.comm};
}

std::vector<LineageLog::Entry> LineageLog::history(uint32_t pid, const Vma& vma) const {
  std::set<uint64_t> tracked{vma.id};
  std::vector<Entry> out;
  // Backwards through this process's changes; where the history reaches
  // the fork that copied the VMA, on into the parent's, before the fork.
  uint32_t cur = pid;
  uint64_t until = UINT64_MAX;
  for (int depth = 0; depth < 64; depth++) {
    bool reached_fork = false;
    auto s = steps_.find(cur);
    if (s != steps_.end())
      for (auto it = s->second.rbegin(); it != s->second.rend(); ++it) {
        if (it->ts > until) continue;
        bool ours = false;
        for (const auto& t : it->change.to) ours |= t.id && tracked.count(t.id);
        if (!ours) continue;
        out.push_back({&*it, cur});
        reached_fork |= it->cause == "fork";
        for (const auto& f : it->change.from)
          if (f.id) tracked.insert(f.id);
      }
    auto parent = forked_from_.find(cur);
    if (!reached_fork || parent == forked_from_.end()) break;
    cur = parent->second.first;
    until = parent->second.second;
  }
  return {out.rbegin(), out.rend()};
}

std::vector<std::string> LineageLog::lines(uint32_t pid, const Layout& l, const std::string& comm, uint64_t addr,
                                           uint64_t base) const {
  std::vector<std::string> out;
  const Vma* v = l.find(addr);
  if (!v) return out;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "# lineage of %" PRIx64 " in %u (%s): #%" PRIu64 " %" PRIx64 "-%" PRIx64 " %s ", addr,
                pid, escape_text(comm).c_str(), v->id, v->start, v->end, v->perms().c_str());
  out.push_back(buf + escape_text(maps_name(l, *v)));
  const auto history = this->history(pid, *v);
  if (truncated(pid)) out.push_back("  (older changes of this process were dropped: only the last ones are kept live)");
  if (history.empty()) out.push_back("  (no change recorded: the VMA was there when tracing began)");
  for (const auto& e : history) {
    const Step& s = *e.step;
    const uint64_t rel = s.ts >= base ? s.ts - base : 0;
    std::string what = describe(s, l);
    if (auto f = forked_from_.find(e.pid); s.cause == "fork" && f != forked_from_.end())
      what += " (copy of parent " + std::to_string(f->second.first) + "'s VMA)";
    std::snprintf(buf, sizeof(buf), "  +%" PRIu64 ".%06" PRIu64 "s %u %-14s ", rel / 1000000000, (rel / 1000) % 1000000,
                  s.tid, s.cause.c_str());
    out.push_back(buf + what);
  }
  return out;
}

}  // namespace vmatrace
