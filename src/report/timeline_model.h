#pragma once
// `vmatrace report FILE --html OUT`, the model: what the interactive
// timeline page shows, computed from a recording (the page's data is
// report/timeline_data.h, the page report/html_report.h).
//
// The page draws what the C++ side has already decided, so that it never
// has to replay a recording in the browser:
//  - every VMA as it was printed in /proc/PID/maps, with the interval of
//    time [t_begin, t_end) during which that exact line was there (a
//    "segment"). The layout at any moment T is the set of segments with
//    t_begin <= T < t_end, which is exactly what `replay --maps --at T`
//    prints (it applies every record up to and including T);
//  - the VMA changes (merge, split, expand, ...) as markers;
//  - page faults bucketed per segment and time bucket (a heat overlay);
//  - mapped bytes by kind sampled at the bucket boundaries;
//  - an address axis that compresses the empty gaps of the address space.
// What cannot be drawn one by one is capped here (segments, markers), and
// the page is told so.
//
// Pure: no BPF, no I/O.

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/pmap.h"
#include "core/processor.h"
#include "core/vma_changes.h"
#include "report/fault_report.h"
#include "report/loss_log.h"
#include "report/malloc_report.h"

namespace vmatrace {

// ---- the address axis -------------------------------------------------------

// One occupied stretch of the address space and the share of the axis it gets
// ([y0, y1) within [0, 1), low addresses at 0). Inside a cluster the axis is
// linear; the gaps between clusters are drawn as thin fixed breaks.
struct AddressCluster {
  uint64_t lo = 0, hi = 0;
  double y0 = 0, y1 = 0;
};

struct AxisOptions {
  // Gaps up to this size stay inside a cluster (drawn to scale); larger ones
  // are cut to a break.
  uint64_t merge_gap = 1ull << 20;
  // The share of the axis each break takes.
  double break_share = 0.015;
};

// Clusters of the union of `ranges` ([start, end) each, any order). Each
// cluster's share grows with the square root of its size (a 1 GiB arena and
// a 4 KiB guard page both stay visible), with a floor so that a single page
// is never thinner than a tenth of the biggest share.
std::vector<AddressCluster> compress_address_axis(std::vector<std::pair<uint64_t, uint64_t>> ranges,
                                                  const AxisOptions& opts = {});
// Position of `addr` on the compressed axis in [0, 1]; addresses in a break
// map to the middle of it, beyond the ends to 0 or 1.
double axis_position(const std::vector<AddressCluster>& axis, uint64_t addr);

// ---- the model ----------------------------------------------------------------

// What the page colours by.
enum class BandKind { kHeap, kStack, kAnon, kFile, kShared, kCode, kSpecial };
const char* band_kind_name(BandKind k);  // "heap", "stack", "anon", "file", "shared", "code", "special"
BandKind band_kind(VmaKind k);
inline constexpr int kBandKinds = 7;

inline constexpr int64_t kOpenEnd = std::numeric_limits<int64_t>::max();

// One /proc/PID/maps line and when it was there. Times are ns relative to
// the recording's start.
struct Segment {
  uint64_t start = 0, end = 0;
  std::string line;  // the maps line, no newline
  std::string name;  // the name column ("" for anonymous)
  std::string perms;
  BandKind kind = BandKind::kAnon;
  int64_t t_begin = 0, t_end = kOpenEnd;
  std::string cause;  // what made it: "mmap: vma_merge", "brk: vma_expand", "seed", ...
  uint64_t faults = 0;
};

struct Marker {
  int64_t t = 0;
  VmaChangeKind kind = VmaChangeKind::kNew;
  uint64_t start = 0, end = 0;  // the VMA the change produced (or removed)
  std::string cause;            // "mmap", "munmap", "fault (stack)", ...
};

// Malloc growth attributed to a call site (filled from the recording's user
// stacks by MallocTracker, as `replay` prints malloc_growth; empty when the
// recording has none, and the page hides its panel).
struct GrowthMarker {
  int64_t t = 0;
  uint64_t addr = 0, size = 0;          // the grown range [addr, addr + size)
  uint64_t vma_start = 0, vma_end = 0;  // the VMA it grew (0, 0: unknown)
  std::string allocator;                // "malloc", "calloc", ...; "" when not from an allocator
  std::string via;                      // "brk", "mmap", "mremap", "mprotect"
  // "malloc via brk from grow_heap (mallocgrowth.c:42)"
  std::string site;
};

struct HeatCell {
  uint32_t segment = 0;  // index into ProcessTimeline::segments
  uint32_t bucket = 0;
  uint64_t faults = 0;
};

struct ProcessTimeline {
  uint32_t pid = 0;
  std::string comm, exe;
  std::vector<Segment> segments;
  std::vector<Marker> markers;
  std::vector<GrowthMarker> malloc_growth;
  uint64_t malloc_growth_dropped = 0;  // beyond the marker cap (still in malloc_sites)
  // Call sites ranked by bytes grown (MallocReport's ranking), every growth.
  std::vector<MallocReport::Site> malloc_sites;
  std::vector<HeatCell> heat;
  // mapped bytes by BandKind at the end of each bucket
  std::vector<std::array<uint64_t, kBandKinds>> mapped;
  std::vector<AddressCluster> axis;
  uint64_t segments_dropped = 0;  // short-lived segments beyond the cap
  uint64_t markers_dropped = 0;
  // Dropped segments lived shorter than this: a layout rebuilt from the
  // kept ones can only miss mappings that short-lived.
  int64_t dropped_below_ns = 0;
  uint64_t faults = 0, faults_unattributed = 0;
};

struct TimelineOptions {
  size_t buckets = 200;         // time buckets (heat, memory over time, snapshots)
  size_t max_segments = 40000;  // per process; longer-lived ones win
  size_t max_markers = 20000;   // per process, an even sample over time beyond that
  AxisOptions axis;
};

struct TimelineModel {
  std::string file;
  std::string command;
  std::string perfetto;  // the Perfetto trace written with the page (--perfetto), relative to it; "" when none
  uint64_t base_ts = 0;  // the recording's start (CLOCK_MONOTONIC ns)
  int64_t t_first = 0;   // first record, relative: bucket 0 starts here
  int64_t t_end = 0;     // last record, relative
  uint64_t bucket_ns = 1;
  std::vector<ProcessTimeline> processes;
  std::vector<FaultReport::VmaRow> fault_hotspots;
  uint64_t records = 0;
  bool damaged = false;
  std::string damage;
  std::vector<LossSite> losses;  // where records were lost (by pid, most first)
  uint64_t lost = 0;
};

// Follows the layouts of the processes over time and turns them into
// segments: told after every record which address range of which process
// may have changed, it compares the maps lines there with the open
// segments, closes the ones that went away and opens the new ones.
class SegmentTracker {
 public:
  SegmentTracker() = default;

  // [lo, hi) of pid's layout may have changed at time t (relative ns);
  // lo = 0, hi = max: all of it. `exe` names the program (for kinds),
  // `cause` what did it; `made` maps a VMA start to the change that made it.
  void observe(uint32_t pid, int64_t t, const Layout& layout, uint64_t lo, uint64_t hi, const std::string& exe,
               const std::string& cause, const std::map<uint64_t, VmaChangeKind>& made = {});
  // The process ended (or lost its layout) at t.
  void close_all(uint32_t pid, int64_t t);
  // The open segment of pid containing addr, or -1.
  int64_t open_segment_at(uint32_t pid, uint64_t addr) const;
  // Mapped bytes by kind of pid now.
  std::array<uint64_t, kBandKinds> mapped(uint32_t pid) const;

  std::vector<Segment>& segments(uint32_t pid) { return procs_[pid].segments; }
  std::vector<uint32_t> pids() const;

 private:
  struct Proc {
    std::vector<Segment> segments;
    std::map<uint64_t, uint32_t> open;  // start -> index
    std::string program;                // for kinds: the exe, or the lowest file mapping
  };
  void close(Proc& p, std::map<uint64_t, uint32_t>::iterator it, int64_t t);

  std::map<uint32_t, Proc> procs_;
};

// The layout of one process at `t` rebuilt from its segments (what the page
// does when one clicks a moment): maps lines in address order.
std::string layout_at(const ProcessTimeline& p, int64_t t);

// Builds the model from a recording's records: a RecordSink of the
// Processor. Call begin() with the recording's time range first (the
// buckets need it), then feed every record through Processor::apply(), then
// finish().
class TimelineBuilder : public RecordSink {
 public:
  explicit TimelineBuilder(TimelineOptions opts = {});

  // base_ts: the recording's start (times are relative to it, as in
  // `replay --at +T`); first_ts/last_ts: the first and last record, which
  // the buckets span.
  void begin(uint64_t base_ts, uint64_t first_ts, uint64_t last_ts, const Processor* processor);
  // The time at which the next record is applied (the running maximum of
  // the timestamps, so that out-of-order records apply at the moment
  // `replay --at` sees them).
  void advance(uint64_t ts);
  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  void on_process_end(const ProcessState& p) override;
  // A growth MallocTracker::after_apply() found in the record just applied.
  void on_malloc_growth(const MallocGrowth& g);
  // End of the stream: processes still alive stay open.
  void set_finishing() { finishing_ = true; }
  TimelineModel finish();

 private:
  struct ProcInfo {
    std::string comm, exe;
    std::vector<Marker> markers;
    uint64_t marker_seen = 0;  // markers offered (the kept ones are a sample when over the cap)
    uint64_t marker_stride = 1;
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> heat;  // (segment, bucket) -> faults
    std::vector<std::array<uint64_t, kBandKinds>> mapped;
    uint64_t faults = 0, unattributed = 0;
    std::vector<GrowthMarker> growth;
    MallocReport malloc;
  };
  void observe_full(const ProcessState& p);
  void sample_until(int64_t t);
  uint32_t bucket_of(int64_t t) const;

  static constexpr uint64_t kFullCheckEvery = 4096;

  TimelineOptions opts_;
  TimelineModel model_;
  SegmentTracker tracker_;
  FaultReport faults_;
  LossLog losses_;
  const Processor* processor_ = nullptr;
  std::map<uint32_t, ProcInfo> info_;
  int64_t now_ = 0;
  size_t sampled_ = 0;        // bucket boundaries sampled so far
  uint64_t since_check_ = 0;  // records since the last full comparison
  bool finishing_ = false;
};

}  // namespace vmatrace
