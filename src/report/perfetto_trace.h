#pragma once
// `vmatrace report FILE --perfetto OUT.pftrace`: a recording as a Perfetto
// trace (TracePacket stream with TrackEvents; src/report/proto/
// perfetto_trace.proto), opened by ui.perfetto.dev and trace_processor.
//
// - One process track per traced process, a thread track per thread seen.
// - Every VMA version (a VMA from the moment the model made it until a change
//   replaced or removed it) is a slice on a track of its process for its
//   kind (heap, stack, anon, file, shared, code, special). Slices of one kind
//   share "lane" tracks: a slice goes into the first lane where it nests in
//   (or follows) the open slices, so the lanes are as few as the VMAs that
//   overlap without nesting, not one per VMA (VMAs living until exit all
//   nest: 100k VMAs take a handful of lanes).
// - Lineage (split, merge, expand, shrink, flags, move) as flows from the
//   replaced versions to their successors.
// - Counter tracks per process: mapped bytes by kind, faults/s (minor,
//   major, unknown) per interval.
// - Syscalls as instant events on their thread with the decoded arguments;
//   malloc growth as instant events with allocator, via, bytes and the
//   symbolized call site. Names are interned.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/malloc_attribution.h"
#include "core/processor.h"
#include "output/event_fields.h"

namespace vmatrace {

namespace perfetto {
class TracePacket;
class TrackEvent;
}  // namespace perfetto

class PerfettoTrace : public RecordSink {
 public:
  // interval_ns: the faults/s counters' bucket; pid: only this process.
  explicit PerfettoTrace(uint64_t interval_ns = 100'000'000, std::optional<uint32_t> pid = std::nullopt);
  ~PerfettoTrace() override;

  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  void on_process_end(const ProcessState& p) override;
  void on_malloc_growth(const MallocGrowth& g);
  // After the last record: VMAs still mapped end at end_ts; the slices are
  // laid out on their lanes. Returns the whole trace.
  std::string finish(uint64_t end_ts);

  struct Stats {
    uint64_t slices = 0, flows = 0, tracks = 0, lanes = 0, instants = 0, counters = 0;
  };
  const Stats& stats() const { return stats_; }

  // The kinds of the VMA tracks and mapped-bytes counters.
  enum Kind { kHeap, kStack, kAnon, kFile, kShared, kCode, kSpecial, kKinds };
  static const char* kind_name(int k);

 private:
  struct Slice {
    uint64_t begin = 0, end = 0;
    uint64_t start = 0, limit = 0;  // the VMA's range
    std::string name;               // "7f..-7f.. rw-p /usr/lib/..."
    std::vector<uint64_t> flows_out, flows_in;
  };
  struct Process {
    uint64_t track = 0;
    std::array<uint64_t, kKinds> bytes_track{}, bytes{};
    std::array<bool, kKinds> bytes_dirty{};
    uint64_t faults_track[3] = {};  // minor, major, unknown
    uint64_t bucket = UINT64_MAX;
    uint64_t bucket_faults[3] = {};
    bool seeded = false;
    uint64_t last_ts = 0;
    std::map<uint64_t, size_t> open;  // VMA start -> index in slices
    std::array<std::vector<size_t>, kKinds> by_kind;
    std::vector<int> kind_of;  // by slice index
  };

  Process& process(uint32_t pid, const std::string& comm);
  uint64_t thread_track(uint32_t pid, uint32_t tid, const std::string& comm);
  uint64_t iid(std::string_view name, int table, perfetto::TracePacket& p);
  perfetto::TrackEvent* event(perfetto::TracePacket& p, uint64_t ts, uint64_t track, int type);
  void emit(const perfetto::TracePacket& p);
  void counter(uint64_t ts, uint64_t track, int64_t value);
  uint64_t new_track(const std::string& name, uint64_t parent, int unit = -1);

  size_t open_slice(uint32_t pid, Process& p, const Vma& v, const ProcessState* proc, uint64_t ts);
  void close_slice(Process& p, uint64_t start, uint64_t ts);
  void reconcile(uint32_t pid, Process& p, const ProcessState& proc, uint64_t ts);
  void flush_bytes(Process& p, uint64_t ts);
  void flush_faults(Process& p, uint64_t next_bucket);
  void lay_out_slices(uint32_t pid, Process& p);

  uint64_t interval_ns_;
  std::optional<uint32_t> only_pid_;
  std::string out_;
  bool first_packet_ = true;
  uint64_t next_uuid_ = 1, next_flow_ = 1;
  std::map<uint32_t, Process> procs_;
  std::map<uint32_t, uint64_t> threads_;
  std::vector<Slice> slices_;
  // Interned names: event names (table 0) and debug annotation names (table 1).
  std::array<std::unordered_map<std::string, uint64_t>, 2> interned_;
  EventFields fields_;
  FieldList field_list_;
  Stats stats_;
};

}  // namespace vmatrace
