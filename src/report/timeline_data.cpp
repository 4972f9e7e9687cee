#include "report/timeline_data.h"

#include <cinttypes>
#include <cstdio>

#include "util/json.h"

namespace vmatrace {
namespace {

// Axis positions: six significant digits draw exactly enough.
constexpr const char* kPosition = "%.6g";

std::string bare_hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%" PRIx64, v);
  return buf;
}

void process_json(JsonWriter& w, const ProcessTimeline& p) {
  w.begin_object().kv("pid", p.pid).kv("comm", p.comm).kv("exe", p.exe);
  w.kv("faults", p.faults).kv("faults_unattributed", p.faults_unattributed);
  w.kv("segments_dropped", p.segments_dropped).kv("dropped_below_ns", p.dropped_below_ns);
  w.kv("markers_dropped", p.markers_dropped);
  // Addresses as numbers for drawing (exact below 2^53, which user space
  // is; [vsyscall] is approximate) and exact in the maps line.
  w.key("axis").begin_array();
  for (const auto& c : p.axis) {
    w.begin_array().value(c.lo).value(c.hi);
    w.value(c.y0, kPosition).value(c.y1, kPosition).end_array();
  }
  w.end_array();
  // Segments as arrays: [start, end, t_begin, t_end (-1: open), kind,
  // faults, line, name, perms, cause].
  w.key("segments").begin_array();
  for (const auto& s : p.segments) {
    w.begin_array().value(s.start).value(s.end).value(s.t_begin).value(s.t_end == kOpenEnd ? -1 : s.t_end);
    w.value(static_cast<uint64_t>(s.kind)).value(s.faults);
    w.value(s.line).value(s.name).value(s.perms).value(s.cause).end_array();
  }
  w.end_array();
  // Markers: [t, kind, start, end, cause].
  w.key("markers").begin_array();
  for (const auto& mk : p.markers)
    w.begin_array()
        .value(mk.t)
        .value(vma_change_kind_name(mk.kind))
        .value(mk.start)
        .value(mk.end)
        .value(mk.cause)
        .end_array();
  w.end_array();
  // Heat: [segment, bucket, faults].
  w.key("heat").begin_array();
  for (const auto& h : p.heat) w.begin_array().value(h.segment).value(h.bucket).value(h.faults).end_array();
  w.end_array();
  w.key("mapped").begin_array();
  for (const auto& bytes : p.mapped) {
    w.begin_array();
    for (uint64_t b : bytes) w.value(b);
    w.end_array();
  }
  w.end_array();
  // Optional: malloc growth with its call site ([t, addr, size, site,
  // allocator ("" none), via, vma_start, vma_end]).
  w.key("malloc_growth").begin_array();
  for (const auto& g : p.malloc_growth) {
    w.begin_array().value(g.t).value(g.addr).value(g.size).value(g.site).value(g.allocator).value(g.via);
    w.value(g.vma_start).value(g.vma_end).end_array();
  }
  w.end_array();
  w.kv("malloc_growth_dropped", p.malloc_growth_dropped);
  // Call sites ranked by bytes: [allocator ("" none), function, location,
  // count, bytes, largest].
  w.key("malloc_sites").begin_array();
  for (const auto& s : p.malloc_sites) {
    w.begin_array().value(s.allocator).value(s.function).value(s.location);
    w.value(s.count).value(s.bytes).value(s.largest).end_array();
  }
  w.end_array();
  w.end_object();
}

}  // namespace

std::string timeline_json(const TimelineModel& m) {
  std::string o;
  o.reserve(1 << 16);
  JsonWriter w(o);
  w.begin_object().kv("version", 1).kv("file", m.file).kv("command", m.command);
  w.kv("perfetto", m.perfetto);
  w.kv("base_ts", std::to_string(m.base_ts));  // beyond 2^53: as a string
  w.kv("t_first", m.t_first).kv("t_end", m.t_end).kv("bucket_ns", m.bucket_ns).kv("records", m.records);
  w.kv("damaged", m.damaged).kv("damage", m.damage);
  // Where records were lost: [pid, comm, lost, times, first, last] (relative ns).
  w.kv("lost", m.lost);
  w.key("losses").begin_array();
  auto rel = [&](uint64_t ts) { return ts > m.base_ts ? ts - m.base_ts : 0; };
  for (const auto& l : m.losses) {
    w.begin_array().value(l.pid).value(l.comm).value(l.lost).value(l.times);
    w.value(rel(l.first_ts)).value(rel(l.last_ts)).end_array();
  }
  w.end_array();
  w.key("kinds").begin_array();
  for (int k = 0; k < kBandKinds; k++) w.value(band_kind_name(static_cast<BandKind>(k)));
  w.end_array();
  w.key("fault_hotspots").begin_array();
  for (const auto& r : m.fault_hotspots) {
    w.begin_object().kv("pid", r.pid).kv("range", bare_hex(r.start) + "-" + bare_hex(r.end));
    w.kv("name", vma_label(r.name, r.start, r.end)).kv("perms", r.perms);
    w.kv("faults", r.c.faults).kv("read", r.c.read).kv("write", r.c.write).kv("exec", r.c.exec);
    w.kv("major", r.c.major).end_object();
  }
  w.end_array();
  w.key("processes").begin_array();
  for (const auto& p : m.processes) process_json(w, p);
  w.end_array();
  w.end_object();
  return o;
}

}  // namespace vmatrace
