#include "report/perfetto_trace.h"

#include <algorithm>
#include <cstdio>

#include "core/pmap.h"
#include "core/proc_maps.h"
#include "perfetto_trace.pb.h"  // generated from src/report/proto/perfetto_trace.proto
#include "report/malloc_report.h"

namespace vmatrace {
namespace {

constexpr uint32_t kSequence = 1;
constexpr uint32_t kSeqIncrementalStateCleared = 1, kSeqNeedsIncrementalState = 2;
constexpr int kEventNames = 0, kAnnotationNames = 1;
const char* const kFaultKinds[3] = {"minor", "major", "unknown"};

int kind_of(const Vma& v, const ProcessState* proc) {
  // As `replay --pmap` classifies it (core/pmap.h), its kinds merged.
  if (!proc) return v.is_file() ? PerfettoTrace::kFile : PerfettoTrace::kAnon;
  const Layout& l = proc->layout;
  const Vma* prev = v.start ? l.find(v.start - 1) : nullptr;
  switch (classify_vma(v, maps_name(l, v), proc->exe, prev, prev ? maps_name(l, *prev) : std::string())) {
    case VmaKind::kProgramText:
    case VmaKind::kLibCode:
      return PerfettoTrace::kCode;
    case VmaKind::kProgramData:
    case VmaKind::kLibData:
    case VmaKind::kFile:
      return PerfettoTrace::kFile;
    case VmaKind::kHeap:
      return PerfettoTrace::kHeap;
    case VmaKind::kStack:
      return PerfettoTrace::kStack;
    case VmaKind::kShm:
      return PerfettoTrace::kShared;
    case VmaKind::kSpecial:
      return PerfettoTrace::kSpecial;
    case VmaKind::kProgramBss:
    case VmaKind::kAnon:
      break;
  }
  return PerfettoTrace::kAnon;
}

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

const char* PerfettoTrace::kind_name(int k) {
  static const char* const names[kKinds] = {"heap", "stack", "anon", "file", "shared", "code", "special"};
  return k >= 0 && k < kKinds ? names[k] : "?";
}

PerfettoTrace::PerfettoTrace(uint64_t interval_ns, std::optional<uint32_t> pid)
    : interval_ns_(interval_ns ? interval_ns : 100'000'000), only_pid_(pid) {}
PerfettoTrace::~PerfettoTrace() = default;

// One TracePacket as Trace.packet (field 1, length-delimited).
void PerfettoTrace::emit(const perfetto::TracePacket& p) {
  const std::string bytes = p.SerializeAsString();
  out_.push_back('\x0a');
  append_varint(out_, bytes.size());
  out_ += bytes;
}

uint64_t PerfettoTrace::iid(std::string_view name, int table, perfetto::TracePacket& p) {
  auto [it, added] = interned_[table].try_emplace(std::string(name), interned_[table].size() + 1);
  if (added) {
    auto* data = p.mutable_interned_data();
    if (table == kEventNames) {
      auto* e = data->add_event_names();
      e->set_iid(it->second);
      e->set_name(it->first);
    } else {
      auto* e = data->add_debug_annotation_names();
      e->set_iid(it->second);
      e->set_name(it->first);
    }
  }
  return it->second;
}

perfetto::TrackEvent* PerfettoTrace::event(perfetto::TracePacket& p, uint64_t ts, uint64_t track, int type) {
  p.set_timestamp(ts);
  p.set_trusted_packet_sequence_id(kSequence);
  p.set_sequence_flags(first_packet_ ? kSeqIncrementalStateCleared : kSeqNeedsIncrementalState);
  first_packet_ = false;
  auto* e = p.mutable_track_event();
  e->set_type(static_cast<perfetto::TrackEvent::Type>(type));
  e->set_track_uuid(track);
  return e;
}

uint64_t PerfettoTrace::new_track(const std::string& name, uint64_t parent, int unit) {
  perfetto::TracePacket p;
  auto* d = p.mutable_track_descriptor();
  const uint64_t uuid = next_uuid_++;
  d->set_uuid(uuid);
  d->set_name(name);
  if (parent) d->set_parent_uuid(parent);
  if (unit >= 0) d->mutable_counter()->set_unit(static_cast<perfetto::CounterDescriptor::Unit>(unit));
  emit(p);
  stats_.tracks++;
  return uuid;
}

void PerfettoTrace::counter(uint64_t ts, uint64_t track, int64_t value) {
  perfetto::TracePacket p;
  event(p, ts, track, perfetto::TrackEvent::TYPE_COUNTER)->set_counter_value(value);
  emit(p);
  stats_.counters++;
}

PerfettoTrace::Process& PerfettoTrace::process(uint32_t pid, const std::string& comm) {
  auto [it, added] = procs_.try_emplace(pid);
  Process& p = it->second;
  if (added) {
    perfetto::TracePacket pkt;
    auto* d = pkt.mutable_track_descriptor();
    p.track = next_uuid_++;
    d->set_uuid(p.track);
    d->mutable_process()->set_pid(static_cast<int32_t>(pid));
    d->mutable_process()->set_process_name(comm);
    emit(pkt);
    stats_.tracks++;
    for (int k = 0; k < kKinds; k++)
      p.bytes_track[k] =
          new_track(std::string("mapped ") + kind_name(k), p.track, perfetto::CounterDescriptor::UNIT_SIZE_BYTES);
    for (int k = 0; k < 3; k++)
      p.faults_track[k] =
          new_track(std::string("faults/s ") + kFaultKinds[k], p.track, perfetto::CounterDescriptor::UNIT_COUNT);
  }
  return p;
}

uint64_t PerfettoTrace::thread_track(uint32_t pid, uint32_t tid, const std::string& comm) {
  auto [it, added] = threads_.try_emplace(tid, 0);
  if (added) {
    process(pid, comm);
    perfetto::TracePacket p;
    auto* d = p.mutable_track_descriptor();
    it->second = next_uuid_++;
    d->set_uuid(it->second);
    d->mutable_thread()->set_pid(static_cast<int32_t>(pid));
    d->mutable_thread()->set_tid(static_cast<int32_t>(tid));
    d->mutable_thread()->set_thread_name(comm);
    emit(p);
    stats_.tracks++;
  }
  return it->second;
}

size_t PerfettoTrace::open_slice(uint32_t pid, Process& p, const Vma& v, const ProcessState* proc, uint64_t ts) {
  (void)pid;
  close_slice(p, v.start, ts);  // a VMA at the same start is replaced
  Slice s;
  s.begin = ts;
  s.end = UINT64_MAX;
  s.start = v.start, s.limit = v.end;
  char range[64];
  std::snprintf(range, sizeof(range), "%llx-%llx ", static_cast<unsigned long long>(v.start),
                static_cast<unsigned long long>(v.end));
  const std::string name = proc ? maps_name(proc->layout, v) : (v.path.empty() ? v.special : v.path).str();
  s.name = range + v.perms() + (name.empty() ? "" : " " + name);
  const int kind = kind_of(v, proc);
  slices_.push_back(std::move(s));
  const size_t index = slices_.size() - 1;
  p.open[v.start] = index;
  p.by_kind[kind].push_back(index);
  if (p.kind_of.size() <= index) p.kind_of.resize(index + 1, 0);
  p.kind_of[index] = kind;
  p.bytes[kind] += v.end - v.start;
  p.bytes_dirty[kind] = true;
  stats_.slices++;
  return index;
}

void PerfettoTrace::close_slice(Process& p, uint64_t start, uint64_t ts) {
  auto it = p.open.find(start);
  if (it == p.open.end()) return;
  Slice& s = slices_[it->second];
  s.end = ts;
  const int kind = p.kind_of[it->second];
  p.bytes[kind] -= s.limit - s.start;
  p.bytes_dirty[kind] = true;
  p.open.erase(it);
}

// The model's layout replaced wholesale (seed, resync after a loss): open
// slices that no longer match end, VMAs without one begin.
void PerfettoTrace::reconcile(uint32_t pid, Process& p, const ProcessState& proc, uint64_t ts) {
  std::vector<uint64_t> stale;
  for (const auto& [start, index] : p.open) {
    const Vma* v = proc.layout.find(start);
    if (!v || v->start != start || v->end != slices_[index].limit) stale.push_back(start);
  }
  for (uint64_t start : stale) close_slice(p, start, ts);
  for (const Vma& v : proc.layout.vmas())
    if (!p.open.count(v.start)) open_slice(pid, p, v, &proc, ts);
  p.seeded = true;
}

void PerfettoTrace::flush_bytes(Process& p, uint64_t ts) {
  for (int k = 0; k < kKinds; k++)
    if (p.bytes_dirty[k]) {
      counter(ts, p.bytes_track[k], static_cast<int64_t>(p.bytes[k]));
      p.bytes_dirty[k] = false;
    }
}

// The finished bucket's rates, and zero for the buckets without faults
// before `next_bucket`, so the counter drops back.
void PerfettoTrace::flush_faults(Process& p, uint64_t next_bucket) {
  if (p.bucket == UINT64_MAX) return;
  const double per_s = 1e9 / static_cast<double>(interval_ns_);
  for (int k = 0; k < 3; k++) {
    counter(p.bucket * interval_ns_, p.faults_track[k], static_cast<int64_t>(p.bucket_faults[k] * per_s));
    if (next_bucket > p.bucket + 1) counter((p.bucket + 1) * interval_ns_, p.faults_track[k], 0);
    p.bucket_faults[k] = 0;
  }
}

void PerfettoTrace::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (rec.type == VMAT_REC_NOTE || !proc || !applied.applied) return;
  if (only_pid_ && proc->pid != *only_pid_) return;
  const uint32_t pid = proc->pid;
  const uint64_t ts = rec.hdr.ts;
  Process& p = process(pid, proc->comm);
  p.last_ts = std::max(p.last_ts, ts);
  if (rec.type == VMAT_EV_FAULT) {
    const uint64_t bucket = ts / interval_ns_;
    if (bucket != p.bucket) {
      flush_faults(p, bucket);
      p.bucket = bucket;
    }
    const int k = rec.fault.flags & VMAT_FAULT_MAJOR ? 1 : rec.fault.flags & VMAT_FAULT_MINOR ? 0 : 2;
    p.bucket_faults[k]++;
  }
  if (!proc->seeded) return;
  // A layout replaced wholesale (seed, resync, exec) or changed without
  // derived changes: compare it with the open slices.
  if (!p.seeded || rec.type == VMAT_REC_LAYOUT || (applied.layout_changed && applied.changes.empty())) {
    reconcile(pid, p, *proc, ts);
  } else {
    for (const VmaChange& c : applied.changes) {
      // A fork's changes are the child's: its layout, copied.
      if (rec.type == VMAT_EV_FORK) break;
      std::vector<size_t> from;
      for (const Vma& v : c.from)
        if (auto it = p.open.find(v.start); it != p.open.end() && slices_[it->second].limit == v.end)
          from.push_back(it->second);
      for (const Vma& v : c.from) close_slice(p, v.start, ts);
      std::vector<size_t> to;
      for (const Vma& v : c.to) {
        const Vma* now = proc->layout.find(v.start);
        if (now && now->start == v.start && now->end == v.end) to.push_back(open_slice(pid, p, v, proc, ts));
      }
      // Lineage: every replaced version flows into every successor.
      if (c.kind != VmaChangeKind::kNew && c.kind != VmaChangeKind::kRemove)
        for (size_t f : from)
          for (size_t t : to) {
            const uint64_t id = next_flow_++;
            slices_[f].flows_out.push_back(id);
            slices_[t].flows_in.push_back(id);
            stats_.flows++;
          }
    }
  }
  flush_bytes(p, ts);

  if (rec.type == VMAT_EV_SYSCALL) {
    field_list_.clear();
    fields_.record(rec, applied, &proc->layout, field_list_);
    perfetto::TracePacket pkt;
    std::string_view name = "syscall";
    int depth = 0;
    std::vector<std::pair<std::string_view, const Field*>> args;
    for (const Field& f : field_list_.fields()) {
      if (f.type == FieldType::kBeginObject || f.type == FieldType::kBeginArray) depth++;
      if (f.type == FieldType::kEndObject || f.type == FieldType::kEndArray) depth--;
      if (depth || f.key.empty() || !(f.in & kInJson)) continue;
      if (f.key == "event") {
        name = f.s;
        continue;
      }
      if (f.key == "ts" || f.key == "pid" || f.key == "tid" || f.key == "comm") continue;
      args.emplace_back(f.key, &f);
    }
    auto* e = event(pkt, ts, thread_track(pid, rec.hdr.tid, std::string(rec.comm)), perfetto::TrackEvent::TYPE_INSTANT);
    e->set_name_iid(iid(name, kEventNames, pkt));
    for (const auto& [key, f] : args) {
      auto* a = e->add_debug_annotations();
      a->set_name_iid(iid(key, kAnnotationNames, pkt));
      switch (f->type) {
        case FieldType::kU64:
        case FieldType::kSize:
        case FieldType::kBytes:
        case FieldType::kOffset:
          a->set_uint_value(f->u);
          break;
        case FieldType::kI64:
          a->set_int_value(static_cast<int64_t>(f->u));
          break;
        case FieldType::kHex:
        case FieldType::kPtr:
          a->set_pointer_value(f->u);
          break;
        case FieldType::kName:
        case FieldType::kText:
          a->set_string_value(std::string(f->s));
          break;
        case FieldType::kBool:
          a->set_bool_value(f->u != 0);
          break;
        default:
          a->set_string_value("");
          break;
      }
    }
    emit(pkt);
    stats_.instants++;
  }
}

void PerfettoTrace::on_malloc_growth(const MallocGrowth& g) {
  if (only_pid_ && g.pid != *only_pid_) return;
  perfetto::TracePacket pkt;
  auto* e = event(pkt, g.ts, thread_track(g.pid, g.tid, ""), perfetto::TrackEvent::TYPE_INSTANT);
  e->set_name_iid(iid("malloc_growth", kEventNames, pkt));
  auto str = [&](const char* key, const std::string& v) {
    auto* a = e->add_debug_annotations();
    a->set_name_iid(iid(key, kAnnotationNames, pkt));
    a->set_string_value(v);
  };
  str("allocator", g.attribution.allocator.value_or("none"));
  str("via", g.via);
  auto* b = e->add_debug_annotations();
  b->set_name_iid(iid("bytes", kAnnotationNames, pkt));
  b->set_uint_value(g.bytes);
  auto* a = e->add_debug_annotations();
  a->set_name_iid(iid("addr", kAnnotationNames, pkt));
  a->set_pointer_value(g.addr);
  str("call_site", call_site_label(g));
  emit(pkt);
  stats_.instants++;
}

void PerfettoTrace::on_process_end(const ProcessState& ps) {
  auto it = procs_.find(ps.pid);
  if (it == procs_.end()) return;
  // Its VMAs end with its last record (the exit).
  Process& p = it->second;
  std::vector<uint64_t> starts;
  for (const auto& [start, index] : p.open) starts.push_back(start);
  for (uint64_t s : starts) close_slice(p, s, p.last_ts);
  flush_bytes(p, p.last_ts);
  flush_faults(p, UINT64_MAX);
  p.bucket = UINT64_MAX;
}

// Lanes: slices of one kind sorted by begin (longer first); a slice goes
// into the first lane whose open slices it nests in or follows.
void PerfettoTrace::lay_out_slices(uint32_t pid, Process& p) {
  (void)pid;
  struct Ev {
    uint64_t ts;
    bool end;
    size_t slice;
  };
  for (int k = 0; k < kKinds; k++) {
    auto& list = p.by_kind[k];
    if (list.empty()) continue;
    std::sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      const Slice &x = slices_[a], &y = slices_[b];
      return x.begin != y.begin ? x.begin < y.begin : x.end != y.end ? x.end > y.end : a < b;
    });
    std::vector<std::vector<size_t>> lanes, stacks;  // slices per lane; open ones
    for (size_t s : list) {
      const Slice& x = slices_[s];
      size_t lane = lanes.size();
      for (size_t l = 0; l < lanes.size() && lane == lanes.size(); l++) {
        auto& st = stacks[l];
        while (!st.empty() && slices_[st.back()].end <= x.begin) st.pop_back();
        if (st.empty() || slices_[st.back()].end >= x.end) lane = l;
      }
      if (lane == lanes.size()) {
        lanes.emplace_back();
        stacks.emplace_back();
      }
      lanes[lane].push_back(s);
      stacks[lane].push_back(s);
    }
    for (size_t l = 0; l < lanes.size(); l++) {
      const uint64_t track = new_track(std::string(kind_name(k)) + (l ? " #" + std::to_string(l + 1) : ""), p.track);
      stats_.lanes++;
      // Begin/end events in nesting order: an end before a begin at the
      // same moment; inner slices end before the ones around them.
      std::vector<Ev> evs;
      std::vector<size_t> st;
      auto close_until = [&](uint64_t ts, bool inclusive) {
        while (!st.empty() && (slices_[st.back()].end < ts || (inclusive && slices_[st.back()].end == ts))) {
          evs.push_back({slices_[st.back()].end, true, st.back()});
          st.pop_back();
        }
      };
      for (size_t s : lanes[l]) {
        close_until(slices_[s].begin, true);
        evs.push_back({slices_[s].begin, false, s});
        st.push_back(s);
      }
      close_until(UINT64_MAX, true);
      for (const Ev& ev : evs) {
        const Slice& x = slices_[ev.slice];
        perfetto::TracePacket pkt;
        auto* e = event(pkt, ev.ts, track,
                        ev.end ? perfetto::TrackEvent::TYPE_SLICE_END : perfetto::TrackEvent::TYPE_SLICE_BEGIN);
        if (!ev.end) {
          e->set_name_iid(iid(x.name, kEventNames, pkt));
          for (uint64_t f : x.flows_out) e->add_flow_ids(f);
          for (uint64_t f : x.flows_in) e->add_terminating_flow_ids(f);
        }
        emit(pkt);
      }
    }
  }
}

std::string PerfettoTrace::finish(uint64_t end_ts) {
  for (auto& [pid, p] : procs_) {
    std::vector<uint64_t> starts;
    for (const auto& [start, index] : p.open) starts.push_back(start);
    for (uint64_t s : starts) close_slice(p, s, end_ts);
    flush_faults(p, UINT64_MAX);
  }
  for (auto& [pid, p] : procs_) lay_out_slices(pid, p);
  return std::move(out_);
}

}  // namespace vmatrace
