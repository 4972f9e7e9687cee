#include "report/timeline_model.h"

#include <algorithm>
#include <cmath>

#include "core/proc_maps.h"

namespace vmatrace {

// ---- the address axis ---------------------------------------------------------

std::vector<AddressCluster> compress_address_axis(std::vector<std::pair<uint64_t, uint64_t>> ranges,
                                                  const AxisOptions& opts) {
  std::vector<AddressCluster> out;
  std::erase_if(ranges, [](const auto& r) { return r.second <= r.first; });
  if (ranges.empty()) return out;
  std::sort(ranges.begin(), ranges.end());
  for (const auto& [lo, hi] : ranges) {
    if (!out.empty() && lo <= out.back().hi + opts.merge_gap) {
      out.back().hi = std::max(out.back().hi, hi);
    } else {
      out.push_back({lo, hi, 0, 0});
    }
  }
  std::vector<double> weight;
  double biggest = 0;
  for (const auto& c : out) {
    weight.push_back(std::sqrt(static_cast<double>(c.hi - c.lo)));
    biggest = std::max(biggest, weight.back());
  }
  double total = 0;
  for (auto& w : weight) total += (w = std::max(w, biggest / 10));
  const double breaks = opts.break_share * static_cast<double>(out.size() - 1);
  const double scale = breaks < 0.5 ? (1.0 - breaks) / total : 0.5 / total;
  const double gap = out.size() > 1 ? (1.0 - total * scale) / static_cast<double>(out.size() - 1) : 0;
  double y = 0;
  for (size_t i = 0; i < out.size(); i++) {
    out[i].y0 = y;
    y += weight[i] * scale;
    out[i].y1 = i + 1 == out.size() ? 1.0 : y;
    y += gap;
  }
  return out;
}

double axis_position(const std::vector<AddressCluster>& axis, uint64_t addr) {
  if (axis.empty()) return 0;
  if (addr <= axis.front().lo) return axis.front().y0;
  for (size_t i = 0; i < axis.size(); i++) {
    const auto& c = axis[i];
    if (addr <= c.hi) {
      if (addr < c.lo) return (axis[i - 1].y1 + c.y0) / 2;  // in the break below c
      return c.y0 + (c.y1 - c.y0) * static_cast<double>(addr - c.lo) / static_cast<double>(c.hi - c.lo);
    }
  }
  return 1.0;
}

// ---- kinds ------------------------------------------------------------------------

const char* band_kind_name(BandKind k) {
  switch (k) {
    case BandKind::kHeap:
      return "heap";
    case BandKind::kStack:
      return "stack";
    case BandKind::kAnon:
      return "anon";
    case BandKind::kFile:
      return "file";
    case BandKind::kShared:
      return "shared";
    case BandKind::kCode:
      return "code";
    case BandKind::kSpecial:
      return "special";
  }
  return "?";
}

BandKind band_kind(VmaKind k) {
  switch (k) {
    case VmaKind::kProgramText:
    case VmaKind::kLibCode:
      return BandKind::kCode;
    case VmaKind::kProgramData:
    case VmaKind::kLibData:
    case VmaKind::kFile:
      return BandKind::kFile;
    case VmaKind::kProgramBss:
    case VmaKind::kAnon:
      return BandKind::kAnon;
    case VmaKind::kHeap:
      return BandKind::kHeap;
    case VmaKind::kStack:
      return BandKind::kStack;
    case VmaKind::kShm:
      return BandKind::kShared;
    case VmaKind::kSpecial:
      return BandKind::kSpecial;
  }
  return BandKind::kAnon;
}

namespace {

BandKind kind_of(const Vma& v, const std::string& name, const std::string& exe) {
  BandKind k = band_kind(classify_vma(v, name, exe, nullptr, ""));
  // A MAP_SHARED file mapping is shared memory to the reader of the picture.
  if (k == BandKind::kFile && v.is_shared()) return BandKind::kShared;
  return k;
}

}  // namespace

// ---- SegmentTracker ---------------------------------------------------------------

void SegmentTracker::close(Proc& p, std::map<uint64_t, uint32_t>::iterator it, int64_t t) {
  Segment& s = p.segments[it->second];
  s.t_end = std::max(t, s.t_begin);
  p.open.erase(it);
}

void SegmentTracker::observe(uint32_t pid, int64_t t, const Layout& layout, uint64_t lo, uint64_t hi,
                             const std::string& exe, const std::string& cause,
                             const std::map<uint64_t, VmaChangeKind>& made) {
  Proc& p = procs_[pid];
  // Widen to whole open segments: a VMA that overlaps the range only in part
  // was changed as a whole.
  auto first = p.open.upper_bound(lo);
  if (first != p.open.begin()) {
    auto prev = std::prev(first);
    if (p.segments[prev->second].end > lo) lo = p.segments[prev->second].start;
  }
  // pmap_text()'s rule when the program is unknown (attached, no exec
  // seen): the lowest file mapping is the program.
  if (!exe.empty()) {
    p.program = exe;
  } else if (p.program.empty()) {
    for (const auto& v : layout.vmas())
      if (v.is_file()) {
        p.program = v.path;
        break;
      }
  }
  std::vector<Vma> now = layout.overlapping(lo, hi);
  for (const auto& v : now) lo = std::min(lo, v.start), hi = std::max(hi, v.end);
  // What is open in [lo, hi) and not in `now` (by identical line) closes.
  std::map<uint64_t, std::pair<std::string, std::string>> lines;  // start -> (line, name)
  for (const auto& v : now) {
    std::string name = maps_name(layout, v);
    std::string line = format_maps_line(v, name);
    line.pop_back();
    lines.emplace(v.start, std::make_pair(std::move(line), std::move(name)));
  }
  for (auto it = p.open.lower_bound(lo); it != p.open.end() && it->first < hi;) {
    auto l = lines.find(it->first);
    if (l != lines.end() && l->second.first == p.segments[it->second].line) {
      lines.erase(l);  // unchanged: stays open
      ++it;
    } else {
      auto next = std::next(it);
      close(p, it, t);
      it = next;
    }
  }
  for (const auto& v : now) {
    auto l = lines.find(v.start);
    if (l == lines.end()) continue;
    Segment s;
    s.start = v.start;
    s.end = v.end;
    s.line = std::move(l->second.first);
    s.name = std::move(l->second.second);
    s.perms = v.perms();
    s.kind = kind_of(v, s.name, p.program);
    s.t_begin = t;
    s.cause = cause;
    if (auto m = made.find(v.start); m != made.end()) s.cause += std::string(": ") + vma_change_kind_name(m->second);
    p.open[v.start] = static_cast<uint32_t>(p.segments.size());
    p.segments.push_back(std::move(s));
  }
}

void SegmentTracker::close_all(uint32_t pid, int64_t t) {
  auto pit = procs_.find(pid);
  if (pit == procs_.end()) return;
  Proc& p = pit->second;
  while (!p.open.empty()) close(p, p.open.begin(), t);
}

int64_t SegmentTracker::open_segment_at(uint32_t pid, uint64_t addr) const {
  auto pit = procs_.find(pid);
  if (pit == procs_.end()) return -1;
  const Proc& p = pit->second;
  auto it = p.open.upper_bound(addr);
  if (it == p.open.begin()) return -1;
  --it;
  return p.segments[it->second].end > addr ? static_cast<int64_t>(it->second) : -1;
}

std::array<uint64_t, kBandKinds> SegmentTracker::mapped(uint32_t pid) const {
  std::array<uint64_t, kBandKinds> out{};
  auto pit = procs_.find(pid);
  if (pit == procs_.end()) return out;
  for (const auto& [start, idx] : pit->second.open) {
    const Segment& s = pit->second.segments[idx];
    out[static_cast<size_t>(s.kind)] += s.end - s.start;
  }
  return out;
}

std::vector<uint32_t> SegmentTracker::pids() const {
  std::vector<uint32_t> out;
  for (const auto& [pid, p] : procs_) out.push_back(pid);
  return out;
}

std::string layout_at(const ProcessTimeline& p, int64_t t) {
  std::vector<const Segment*> live;
  for (const auto& s : p.segments)
    if (s.t_begin <= t && t < s.t_end) live.push_back(&s);
  std::sort(live.begin(), live.end(), [](const Segment* a, const Segment* b) { return a->start < b->start; });
  std::string out;
  for (const auto* s : live) out += s->line + "\n";
  return out;
}

// ---- TimelineBuilder ----------------------------------------------------------------

TimelineBuilder::TimelineBuilder(TimelineOptions opts) : opts_(opts) {
  if (opts_.buckets == 0) opts_.buckets = 1;
}

void TimelineBuilder::begin(uint64_t base_ts, uint64_t first_ts, uint64_t last_ts, const Processor* processor) {
  processor_ = processor;
  model_.base_ts = base_ts;
  model_.t_end = last_ts > base_ts ? static_cast<int64_t>(last_ts - base_ts) : 0;
  model_.t_first = std::min(model_.t_end, first_ts > base_ts ? static_cast<int64_t>(first_ts - base_ts) : 0);
  uint64_t span = static_cast<uint64_t>(model_.t_end - model_.t_first);
  model_.bucket_ns = std::max<uint64_t>(1, (span + opts_.buckets - 1) / opts_.buckets);
  faults_.set_start_ts(base_ts);
}

uint32_t TimelineBuilder::bucket_of(int64_t t) const {
  if (t <= model_.t_first) return 0;
  uint64_t b = static_cast<uint64_t>(t - model_.t_first) / model_.bucket_ns;
  return static_cast<uint32_t>(std::min<uint64_t>(b, opts_.buckets - 1));
}

void TimelineBuilder::sample_until(int64_t t) {
  // Boundary b is the end of bucket b; the state there is the state after
  // every record at or before it, i.e. the state now if t is past it.
  while (sampled_ < opts_.buckets && model_.t_first + static_cast<int64_t>((sampled_ + 1) * model_.bucket_ns) < t) {
    for (uint32_t pid : tracker_.pids()) {
      auto& m = info_[pid].mapped;
      m.resize(sampled_);
      m.push_back(tracker_.mapped(pid));
    }
    sampled_++;
  }
}

void TimelineBuilder::advance(uint64_t ts) {
  // A syscall or fault re-reads only the range it touched. Should anything
  // outside it have changed how /proc prints a VMA, a periodic full
  // comparison (before the next record, so at the moment of the last one)
  // closes that gap within kFullCheckEvery records; it is a no-op, not a
  // new segment, when nothing differs.
  if (processor_ && ++since_check_ >= kFullCheckEvery) {
    since_check_ = 0;
    for (const auto* p : processor_->processes())
      if (p->seeded) tracker_.observe(p->pid, now_, p->layout, 0, UINT64_MAX, p->exe, "resync");
  }
  int64_t t = ts > model_.base_ts ? static_cast<int64_t>(ts - model_.base_ts) : 0;
  if (t > now_) {
    sample_until(t);
    now_ = t;
  }
}

void TimelineBuilder::observe_full(const ProcessState& p) {
  if (!p.seeded) {
    tracker_.close_all(p.pid, now_);
    return;
  }
  tracker_.observe(p.pid, now_, p.layout, 0, UINT64_MAX, p.exe, "seed");
}

void TimelineBuilder::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  model_.records++;
  faults_.on_record(rec, applied, proc);
  losses_.add(rec);

  if (rec.type == VMAT_REC_FILE_DELETED) {
    // Every process's mappings of that file print " (deleted)" now.
    if (processor_)
      for (const auto* p : processor_->processes()) {
        if (!p->seeded) continue;
        tracker_.observe(p->pid, now_, p->layout, 0, UINT64_MAX, p->exe, "file deleted");
      }
    return;
  }
  if (!proc) return;
  ProcInfo& info = info_[proc->pid];
  info.comm = proc->comm;
  info.exe = proc->exe;

  uint32_t target = proc->pid;
  const ProcessState* target_state = proc;
  if (rec.type == VMAT_EV_FORK && applied.cause == "fork" && processor_) {
    target = rec.fork.child_pid;
    target_state = processor_->process(target);
    if (target_state) {
      info_[target].comm = target_state->comm;
      info_[target].exe = target_state->exe;
    }
  }

  // Markers, and which VMA each change made.
  std::map<uint64_t, VmaChangeKind> made;
  ProcInfo& tinfo = info_[target];
  for (const auto& c : applied.changes) {
    const auto& vs = c.to.empty() ? c.from : c.to;
    if (vs.empty()) continue;
    for (const auto& v : c.to) made[v.start] = c.kind;
    if (applied.cause == "fork") continue;  // a whole new layout: no marker per VMA
    // Over the cap, an even sample over the whole run (not the first N):
    // every marker_stride-th is kept, and the stride doubles (the kept
    // ones thinned to every other) whenever twice the cap is reached.
    if (tinfo.marker_seen++ % tinfo.marker_stride != 0) continue;
    if (opts_.max_markers && tinfo.markers.size() >= 2 * opts_.max_markers) {
      size_t w = 0;
      for (size_t i = 0; i < tinfo.markers.size(); i += 2) tinfo.markers[w++] = std::move(tinfo.markers[i]);
      tinfo.markers.resize(w);
      tinfo.marker_stride *= 2;
      if ((tinfo.marker_seen - 1) % tinfo.marker_stride != 0) continue;
    }
    Marker m;
    m.t = now_;
    m.kind = c.kind;
    m.start = vs.front().start;
    m.end = vs.back().end;
    m.cause = applied.cause;
    tinfo.markers.push_back(std::move(m));
  }

  std::string cause = applied.cause.empty() ? "seed" : applied.cause;
  switch (rec.type) {
    case VMAT_EV_SYSCALL:
    case VMAT_EV_FAULT: {
      if (!applied.applied) break;
      if (!proc->seeded) {
        tracker_.close_all(proc->pid, now_);
        break;
      }
      // The range the operation touched: everything it changed, before and after.
      uint64_t lo = UINT64_MAX, hi = 0;
      auto widen = [&](const Vma& v) { lo = std::min(lo, v.start), hi = std::max(hi, v.end); };
      for (const auto& v : applied.change.result) widen(v);
      for (const auto& v : applied.change.removed) widen(v);
      for (const auto& c : applied.changes) {
        for (const auto& v : c.from) widen(v);
        for (const auto& v : c.to) widen(v);
      }
      if (lo < hi) tracker_.observe(proc->pid, now_, proc->layout, lo, hi, proc->exe, cause, made);
      break;
    }
    case VMAT_EV_FORK:
      if (target_state && target != proc->pid) {
        if (target_state->seeded)
          tracker_.observe(target, now_, target_state->layout, 0, UINT64_MAX, target_state->exe, "fork", made);
      }
      break;
    case VMAT_EV_EXIT:
    case VMAT_REC_LOSS:
      break;
    default:  // exec, its VMA walk, a whole layout (seed, resync)
      if (!proc->seeded)
        tracker_.close_all(proc->pid, now_);
      else
        tracker_.observe(proc->pid, now_, proc->layout, 0, UINT64_MAX, proc->exe, cause, made);
      break;
  }

  if (rec.type == VMAT_EV_FAULT) {
    info.faults++;
    int64_t seg = applied.fault_vma ? tracker_.open_segment_at(proc->pid, applied.fault_vma->start) : -1;
    if (seg < 0) {
      info.unattributed++;
    } else {
      tracker_.segments(proc->pid)[static_cast<size_t>(seg)].faults++;
      info.heat[{static_cast<uint32_t>(seg), bucket_of(now_)}]++;
    }
  }
}

void TimelineBuilder::on_process_end(const ProcessState& p) {
  faults_.on_process_end(p);
  if (!finishing_) tracker_.close_all(p.pid, now_);
}

void TimelineBuilder::on_malloc_growth(const MallocGrowth& g) {
  ProcInfo& info = info_[g.pid];
  info.malloc.add(g);
  GrowthMarker m;
  m.t = now_;
  m.addr = g.addr;
  m.size = g.bytes;
  m.vma_start = g.vma_start;
  m.vma_end = g.vma_end;
  m.allocator = g.attribution.allocator.value_or("");
  m.via = g.via;
  m.site = (m.allocator.empty() ? std::string("not from an allocator:") : m.allocator) + " via " + g.via + " from " +
           call_site_label(g);
  info.growth.push_back(std::move(m));
}

TimelineModel TimelineBuilder::finish() {
  sample_until(kOpenEnd);
  for (uint32_t pid : tracker_.pids()) {
    std::vector<Segment>& segs = tracker_.segments(pid);
    if (segs.empty()) continue;
    ProcInfo& info = info_[pid];
    ProcessTimeline pt;
    pt.pid = pid;
    pt.comm = info.comm;
    pt.exe = info.exe;
    pt.faults = info.faults;
    pt.faults_unattributed = info.unattributed;
    pt.markers = std::move(info.markers);
    if (opts_.max_markers && pt.markers.size() > opts_.max_markers) {
      // The last thinning to the cap, evenly.
      std::vector<Marker> kept;
      kept.reserve(opts_.max_markers);
      for (size_t i = 0; i < opts_.max_markers; i++)
        kept.push_back(std::move(pt.markers[i * pt.markers.size() / opts_.max_markers]));
      pt.markers = std::move(kept);
    }
    pt.markers_dropped = info.marker_seen - pt.markers.size();
    pt.malloc_growth = std::move(info.growth);
    if (opts_.max_markers && pt.malloc_growth.size() > opts_.max_markers) {
      std::vector<GrowthMarker> kept;
      kept.reserve(opts_.max_markers);
      for (size_t i = 0; i < opts_.max_markers; i++)
        kept.push_back(std::move(pt.malloc_growth[i * pt.malloc_growth.size() / opts_.max_markers]));
      pt.malloc_growth_dropped = pt.malloc_growth.size() - kept.size();
      pt.malloc_growth = std::move(kept);
    }
    pt.malloc_sites = info.malloc.sites();
    pt.mapped = std::move(info.mapped);
    pt.mapped.resize(opts_.buckets);

    // Over the cap: keep the longest-lived segments (the short-lived ones
    // are the churn the picture cannot show one by one anyway).
    auto life = [&](const Segment& s) { return std::min(s.t_end, model_.t_end + 1) - s.t_begin; };
    std::vector<bool> keep(segs.size(), true);
    if (segs.size() > opts_.max_segments) {
      std::vector<uint32_t> order(segs.size());
      for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
      auto cut = order.begin() + static_cast<ptrdiff_t>(opts_.max_segments);
      std::nth_element(order.begin(), cut, order.end(), [&](uint32_t a, uint32_t b) {
        int64_t la = life(segs[a]), lb = life(segs[b]);
        return la != lb ? la > lb : a < b;
      });
      for (auto it = cut; it != order.end(); ++it) {
        keep[*it] = false;
        pt.dropped_below_ns = std::max(pt.dropped_below_ns, life(segs[*it]) + 1);
      }
    }
    std::vector<int64_t> new_index(segs.size(), -1);
    for (size_t i = 0; i < segs.size(); i++) {
      if (!keep[i]) {
        pt.segments_dropped++;
        continue;
      }
      new_index[i] = static_cast<int64_t>(pt.segments.size());
      pt.segments.push_back(std::move(segs[i]));
    }
    for (const auto& [key, n] : info.heat) {
      int64_t idx = new_index[key.first];
      if (idx < 0) continue;
      pt.heat.push_back({static_cast<uint32_t>(idx), key.second, n});
    }
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& s : pt.segments) ranges.emplace_back(s.start, s.end);
    pt.axis = compress_address_axis(std::move(ranges), opts_.axis);
    model_.processes.push_back(std::move(pt));
  }
  model_.fault_hotspots = faults_.by_vma();
  model_.losses = losses_.sites();
  model_.lost = losses_.total();
  return std::move(model_);
}

}  // namespace vmatrace
