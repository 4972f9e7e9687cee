// The timeline page's data model (report/html_report.h): the compressed
// address axis, segment lifetimes (the layout rebuilt at any moment must be
// the model's own /proc/PID/maps then), fault bucketing, memory sampling,
// the segment cap, and the page around the JSON.
#include <gtest/gtest.h>

#include <cstring>

#include "core/proc_maps.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "core/vm_flags.h"
#include "report/html_report.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kBase = 1'000'000'000;

Vma file(uint64_t start, uint64_t end, const std::string& path, uint64_t flags) {
  Vma v = anon(start, end, flags);
  v.path = path;
  v.ino = 42;
  v.dev = 8 << 20;
  v.pgoff = 0;
  return v;
}

std::vector<std::byte> fault_rec(uint32_t pid, uint64_t ts, uint64_t addr) {
  vmat_fault_event e{};
  e.hdr = make_header(VMAT_EV_FAULT, ts, pid, pid, "t");
  e.addr = addr;
  e.error_code = 2;  // write
  return bytes_of(e);
}

std::vector<std::byte> exit_rec(uint32_t pid, uint64_t ts) {
  vmat_exit_event e{};
  e.hdr = make_header(VMAT_EV_EXIT, ts, pid, pid, "t");
  e.flags = VMAT_EXIT_GROUP;
  return bytes_of(e);
}

std::vector<std::byte> mmap_rec(uint32_t pid, uint64_t ts, uint64_t addr, uint64_t len) {
  return bytes_of(mmap_event(pid, ts, addr, len));
}

std::vector<std::byte> munmap_rec(uint32_t pid, uint64_t ts, uint64_t addr, uint64_t len) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, "t");
  e.sys = VMAT_SYS_MUNMAP;
  e.args[0] = addr;
  e.args[1] = len;
  return bytes_of(e);
}

// Feeds records through a Processor into a builder the way `report --html`
// does, and checks after each one that the layout the page would rebuild
// for that moment is the model's own maps text.
struct Feed {
  Processor proc;
  TimelineBuilder builder;
  std::vector<std::pair<int64_t, std::string>> truth;  // (t, maps of pid 7 after the record)

  explicit Feed(TimelineOptions o, uint64_t last) : builder(o) { builder.begin(kBase, kBase, last, &proc); }
  void apply(const std::vector<std::byte>& b) {
    DecodedRecord d = decode(b);
    builder.advance(d.hdr.ts);
    proc.apply(d, &builder);
    const ProcessState* p = proc.process(7);
    truth.emplace_back(static_cast<int64_t>(d.hdr.ts - kBase), p && p->seeded ? format_proc_maps(p->layout) : "");
  }
  TimelineModel finish() {
    builder.set_finishing();
    proc.finish(&builder);
    return builder.finish();
  }
};

}  // namespace

// ---- the axis ----

TEST(HtmlAxis, FarApartRangesBecomeClustersWithBreaks) {
  // program+heap low, libraries and stack high, 100 TiB of nothing between.
  auto axis = compress_address_axis({{0x555555554000, 0x555555560000},
                                     {0x555555580000, 0x5555555a1000},    // heap, 128 KiB above: same cluster
                                     {0x7ffff7d80000, 0x7ffff7fc0000},    // libraries
                                     {0x7ffffffde000, 0x7ffffffff000}});  // stack, ~128 MiB above: its own
  ASSERT_EQ(axis.size(), 3u);
  EXPECT_EQ(axis[0].lo, 0x555555554000u);
  EXPECT_EQ(axis[0].hi, 0x5555555a1000u);
  EXPECT_EQ(axis[1].lo, 0x7ffff7d80000u);
  EXPECT_EQ(axis[2].hi, 0x7ffffffff000u);
  EXPECT_DOUBLE_EQ(axis.front().y0, 0.0);
  EXPECT_DOUBLE_EQ(axis.back().y1, 1.0);
  for (size_t i = 0; i < axis.size(); i++) {
    EXPECT_LT(axis[i].y0, axis[i].y1);
    if (i) {
      EXPECT_LT(axis[i - 1].y1, axis[i].y0) << "a break between clusters";
    }
    // Every cluster readable: no less than a tenth of the biggest.
    EXPECT_GT(axis[i].y1 - axis[i].y0, 0.05);
  }
  // Linear inside a cluster, monotonic across, breaks in between.
  double heap = axis_position(axis, 0x555555580000);
  EXPECT_GT(heap, axis[0].y0);
  EXPECT_LT(heap, axis[0].y1);
  double mid = axis_position(axis, 0x6000'0000'0000);
  EXPECT_GT(mid, axis[0].y1);
  EXPECT_LT(mid, axis[1].y0);
  EXPECT_DOUBLE_EQ(axis_position(axis, 0x7ffff7d80000), axis[1].y0);
  EXPECT_DOUBLE_EQ(axis_position(axis, 0x7ffffffff000), 1.0);
  EXPECT_DOUBLE_EQ(axis_position(axis, 0x1000), 0.0);
  uint64_t prev_addr = 0x555555554000;
  double prev = axis_position(axis, prev_addr);
  for (uint64_t a : {0x555555558000ull, 0x5555555a0000ull, 0x7ffff0000000ull, 0x7ffff7e00000ull, 0x7ffffffe0000ull}) {
    double p = axis_position(axis, a);
    EXPECT_GT(p, prev) << std::hex << a;
    prev = p;
  }
}

TEST(HtmlAxis, GapsUpToTheThresholdStayInsideAndEmptyInputGivesNoAxis) {
  EXPECT_TRUE(compress_address_axis({}).empty());
  EXPECT_TRUE(compress_address_axis({{0x2000, 0x1000}}).empty()) << "empty/reversed ranges ignored";
  AxisOptions o;
  o.merge_gap = 0x10000;
  auto axis = compress_address_axis({{0x100000, 0x101000}, {0x110000, 0x111000}, {0x130000, 0x131000}}, o);
  ASSERT_EQ(axis.size(), 2u) << "a gap of exactly merge_gap merges, a larger one breaks";
  EXPECT_EQ(axis[0].hi, 0x111000u);
  EXPECT_EQ(axis[1].lo, 0x130000u);
  auto one = compress_address_axis({{0x1000, 0x2000}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_DOUBLE_EQ(one[0].y0, 0.0);
  EXPECT_DOUBLE_EQ(one[0].y1, 1.0);
}

// ---- lifetimes ----

TEST(HtmlSegments, LayoutRebuiltFromSegmentsEqualsTheModelAtEveryMoment) {
  TimelineOptions o;
  o.buckets = 10;
  Feed r(o, kBase + 100 * kMs);
  r.apply(layout_rec(7, kBase,
                     {file(0x400000, 0x401000, "/bin/app", VM_READ | VM_EXEC | VM_MAYREAD | VM_MAYEXEC),
                      anon(0x10000000, 0x10004000), anon(0x7ffffffde000, 0x7ffffffff000)}));
  r.apply(mmap_rec(7, kBase + 10 * kMs, 0x20000000, 0x4000));
  r.apply(mmap_rec(7, kBase + 20 * kMs, 0x20004000, 0x2000));    // merges with the one before
  r.apply(munmap_rec(7, kBase + 30 * kMs, 0x20001000, 0x1000));  // splits it
  r.apply(exit_rec(7, kBase + 100 * kMs));
  TimelineModel m = r.finish();
  ASSERT_EQ(m.processes.size(), 1u);
  const ProcessTimeline& p = m.processes[0];
  // Each moment of a record, and just before the next: the maps then.
  for (size_t i = 0; i + 1 < r.truth.size(); i++) {
    auto [t, maps] = r.truth[i];
    EXPECT_EQ(layout_at(p, t), maps) << "after record " << i << " at " << t;
    EXPECT_EQ(layout_at(p, r.truth[i + 1].first - 1), maps) << "just before record " << i + 1;
    if (i) {
      EXPECT_EQ(layout_at(p, t - 1), r.truth[i - 1].second) << "just before record " << i;
    }
  }
  EXPECT_EQ(layout_at(p, 100 * kMs), "") << "gone at its exit";
  EXPECT_NE(layout_at(p, 0).find("/bin/app"), std::string::npos);

  // The first mapping lived [10 ms, 20 ms), replaced by the merged one, split at 30 ms.
  const Segment* first = nullptr;
  const Segment* merged = nullptr;
  for (const auto& s : p.segments) {
    if (s.start == 0x20000000 && s.end == 0x20004000) first = &s;
    if (s.start == 0x20000000 && s.end == 0x20006000) merged = &s;
  }
  ASSERT_TRUE(first && merged);
  EXPECT_EQ(first->t_begin, static_cast<int64_t>(10 * kMs));
  EXPECT_EQ(first->t_end, static_cast<int64_t>(20 * kMs));
  EXPECT_EQ(merged->t_end, static_cast<int64_t>(30 * kMs));
  EXPECT_NE(merged->cause.find("mmap"), std::string::npos) << merged->cause;
  EXPECT_NE(merged->cause.find("vma_merge"), std::string::npos) << merged->cause;
  EXPECT_EQ(first->kind, BandKind::kAnon);
  for (const auto& s : p.segments)
    if (s.start == 0x400000) {
      EXPECT_EQ(s.kind, BandKind::kCode);
    }

  // Markers where the changes happened.
  bool merge = false, split = false;
  for (const auto& mk : p.markers) {
    if (mk.kind == VmaChangeKind::kMerge && mk.t == static_cast<int64_t>(20 * kMs) && mk.start == 0x20000000)
      merge = true;
    if (mk.kind == VmaChangeKind::kSplit && mk.t == static_cast<int64_t>(30 * kMs)) split = true;
  }
  EXPECT_TRUE(merge);
  EXPECT_TRUE(split);
}

TEST(HtmlSegments, OutOfOrderRecordsApplyAtTheRunningMaximum) {
  // replay --at T stops at the first record later than T: a record stamped
  // earlier but arriving after it applies at that later moment.
  Feed r({}, kBase + 50 * kMs);
  r.apply(layout_rec(7, kBase, {anon(0x10000000, 0x10004000)}));
  r.apply(mmap_rec(7, kBase + 30 * kMs, 0x20000000, 0x1000));
  r.apply(mmap_rec(7, kBase + 20 * kMs, 0x30000000, 0x1000));  // late
  TimelineModel m = r.finish();
  for (const auto& s : m.processes.at(0).segments)
    if (s.start == 0x30000000) {
      EXPECT_EQ(s.t_begin, static_cast<int64_t>(30 * kMs));
    }
  EXPECT_EQ(layout_at(m.processes[0], 50 * kMs), r.truth.back().second) << "alive at the end stays open";
}

// ---- bucketing ----

TEST(HtmlBuckets, FaultsLandInTheirSegmentAndBucketAndMemoryIsSampledPerBucket) {
  TimelineOptions o;
  o.buckets = 10;  // 10 ms each over 100 ms
  Feed r(o, kBase + 100 * kMs);
  r.apply(layout_rec(7, kBase, {anon(0x10000000, 0x10004000), anon(0x7ffffffde000, 0x7ffffffff000)}));
  r.apply(fault_rec(7, kBase + 5 * kMs, 0x10000010));
  r.apply(fault_rec(7, kBase + 6 * kMs, 0x10001000));
  r.apply(fault_rec(7, kBase + 55 * kMs, 0x10002000));
  r.apply(fault_rec(7, kBase + 56 * kMs, 0x50000000));  // outside any VMA
  r.apply(mmap_rec(7, kBase + 65 * kMs, 0x20000000, 0x100000));
  r.apply(exit_rec(7, kBase + 100 * kMs));
  TimelineModel m = r.finish();
  EXPECT_EQ(m.bucket_ns, 10 * kMs);
  const ProcessTimeline& p = m.processes.at(0);
  EXPECT_EQ(p.faults, 4u);
  EXPECT_EQ(p.faults_unattributed, 1u);
  std::map<std::pair<uint64_t, uint32_t>, uint64_t> cells;  // (segment start, bucket) -> faults
  for (const auto& h : p.heat) cells[{p.segments.at(h.segment).start, h.bucket}] += h.faults;
  EXPECT_EQ((cells[{0x10000000, 0}]), 2u);
  EXPECT_EQ((cells[{0x10000000, 5}]), 1u);
  EXPECT_EQ(cells.size(), 2u);
  for (const auto& s : p.segments)
    if (s.start == 0x10000000) {
      EXPECT_EQ(s.faults, 3u);
    }
  // Mapped bytes at each bucket's end: 16 KiB anon + 132 KiB stack, then
  // +1 MiB anon from 65 ms on.
  ASSERT_EQ(p.mapped.size(), 10u);
  auto anon_at = [&](size_t b) { return p.mapped[b][static_cast<size_t>(BandKind::kAnon)]; };
  EXPECT_EQ(anon_at(0), 0x4000u + 0x21000u) << "no [stack] name without start_stack: anonymous";
  EXPECT_EQ(anon_at(5), 0x4000u + 0x21000u);
  EXPECT_EQ(anon_at(6), 0x4000u + 0x21000u + 0x100000u);
  EXPECT_EQ(anon_at(8), 0x4000u + 0x21000u + 0x100000u);
}

TEST(HtmlBuckets, OverTheCapTheLongestLivedSegmentsAreKept) {
  TimelineOptions o;
  o.max_segments = 3;
  Feed r(o, kBase + 100 * kMs);
  r.apply(layout_rec(7, kBase, {anon(0x10000000, 0x10004000)}));
  // Five short-lived mappings, each unmapped 1 ms later, and one that stays.
  for (uint64_t i = 0; i < 5; i++) {
    r.apply(mmap_rec(7, kBase + (10 + 10 * i) * kMs, 0x20000000, 0x1000));
    r.apply(munmap_rec(7, kBase + (11 + 10 * i) * kMs, 0x20000000, 0x1000));
  }
  r.apply(mmap_rec(7, kBase + 70 * kMs, 0x30000000, 0x1000));
  TimelineModel m = r.finish();
  const ProcessTimeline& p = m.processes.at(0);
  EXPECT_EQ(p.segments.size(), 3u);
  EXPECT_EQ(p.segments_dropped, 4u);
  EXPECT_EQ(p.dropped_below_ns > 0, true);
  bool first = false, last = false;
  for (const auto& s : p.segments) first |= s.start == 0x10000000, last |= s.start == 0x30000000;
  EXPECT_TRUE(first && last) << "the long-lived ones are drawn";
  EXPECT_EQ(layout_at(p, 90 * kMs), r.truth.back().second) << "long-lived layout still exact";
}

TEST(HtmlBuckets, OverTheMarkerCapAnEvenSampleOverTheWholeRunIsKept) {
  TimelineOptions o;
  o.max_markers = 8;
  Feed r(o, kBase + 100 * kMs);
  r.apply(layout_rec(7, kBase, {anon(0x10000000, 0x10004000)}));
  // 50 mappings far apart (no merges): one vma_new each, 1 ms apart.
  for (uint64_t i = 0; i < 50; i++) r.apply(mmap_rec(7, kBase + (1 + i) * kMs, 0x20000000 + i * 0x100000, 0x1000));
  TimelineModel m = r.finish();
  const ProcessTimeline& p = m.processes.at(0);
  ASSERT_EQ(p.markers.size(), 8u);
  EXPECT_EQ(p.markers_dropped, 42u);
  for (size_t i = 1; i < p.markers.size(); i++) EXPECT_LT(p.markers[i - 1].t, p.markers[i].t);
  EXPECT_LE(p.markers.front().t, static_cast<int64_t>(10 * kMs)) << "the start is sampled";
  EXPECT_GE(p.markers.back().t, static_cast<int64_t>(35 * kMs)) << "and so is the end, not only the first N";
  for (const auto& mk : p.markers) EXPECT_EQ(mk.kind, VmaChangeKind::kNew);
}

// ---- the page ----

TEST(HtmlPage, JsonIsEmbeddedSafelyAndTheMallocGrowthListIsAlwaysThere) {
  Feed r({}, kBase + 10 * kMs);
  Vma evil = file(0x400000, 0x401000, "/tmp/</script><b>x", VM_READ | VM_MAYREAD);
  r.apply(layout_rec(7, kBase, {evil}));
  TimelineModel m = r.finish();
  m.file = "rec.vmat";
  std::string json = timeline_json(m);
  EXPECT_NE(json.find("\"malloc_growth\":[]"), std::string::npos);
  EXPECT_NE(json.find("\"segments\":[[4194304,4198400,0,-1,"), std::string::npos) << json.substr(0, 600);
  std::string page = timeline_html(m);
  EXPECT_EQ(page.find("/*@DATA@*/"), std::string::npos);
  EXPECT_EQ(page.find("</script><b>"), std::string::npos) << "a path cannot close the data element";
  EXPECT_NE(page.find("d3"), std::string::npos);
  EXPECT_EQ(page.find("<script src"), std::string::npos) << "self-contained: nothing loaded at view time";
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_NE(page.find("window.vmatraceTimeline"), std::string::npos);
}

namespace {
MallocGrowth growth(const char* alloc, const char* via, uint64_t addr, uint64_t bytes, const char* fn, int line) {
  MallocGrowth g;
  g.pid = 7;
  g.tid = 7;
  g.via = via;
  g.addr = addr;
  g.bytes = bytes;
  g.vma_start = addr & ~0xfffull;
  g.vma_end = addr + bytes;
  g.stack = {{0x7ffff7e00000, "brk", "brk", 0x10, "/lib/libc.so.6", "", 0},
             {0x555555555123, fn, fn, 0x1c, "/app", std::string("/src/") + "a.c", line}};
  if (alloc) g.attribution.allocator = alloc;
  g.attribution.call_site = 1;
  return g;
}
}  // namespace

TEST(HtmlPage, MallocGrowthMarkersCarryTheirCallSiteAndSitesAreRanked) {
  Feed r({}, kBase + 10 * kMs);
  r.apply(layout_rec(7, kBase, {anon(0x555555560000, 0x555555581000, VM_READ | VM_WRITE)}));
  r.builder.advance(kBase + 2 * kMs);
  r.builder.on_malloc_growth(growth("malloc", "brk", 0x555555560000, 0x21000, "grow_heap", 42));
  r.builder.advance(kBase + 3 * kMs);
  r.builder.on_malloc_growth(growth("calloc", "mmap", 0x7ffff0000000, 4 << 20, "big_calloc", 50));
  r.builder.on_malloc_growth(growth(nullptr, "mmap", 0x7ffff1000000, 1 << 20, "direct_mmap", 60));
  TimelineModel m = r.finish();
  ASSERT_EQ(m.processes.size(), 1u);
  const ProcessTimeline& p = m.processes[0];
  ASSERT_EQ(p.malloc_growth.size(), 3u);
  EXPECT_EQ(p.malloc_growth[0].t, 2 * kMs);
  EXPECT_EQ(p.malloc_growth[0].site, "malloc via brk from grow_heap (a.c:42)");
  EXPECT_EQ(p.malloc_growth[2].site, "not from an allocator: via mmap from direct_mmap (a.c:60)");
  // Ranked by bytes, as `report --malloc` ranks them.
  ASSERT_EQ(p.malloc_sites.size(), 3u);
  EXPECT_EQ(p.malloc_sites[0].function, "big_calloc");
  EXPECT_EQ(p.malloc_sites[1].function, "direct_mmap");
  EXPECT_EQ(p.malloc_sites[2].function, "grow_heap");
  std::string json = timeline_json(m);
  // [t, addr, size, site, allocator, via, vma_start, vma_end]
  EXPECT_NE(json.find("\"malloc_growth\":[[2000000,93824992280576,135168,\"malloc via brk from grow_heap (a.c:42)\","
                      "\"malloc\",\"brk\",93824992280576,93824992415744],"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"malloc_growth_dropped\":0,\"malloc_sites\":[[\"calloc\",\"big_calloc\",\"a.c:50\",1,4194304,"
                      "4194304],[\"\",\"direct_mmap\""),
            std::string::npos)
      << json;
}
