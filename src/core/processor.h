#pragma once
// The frontend's state machine: applies decoded records, in stream order, to
// one Layout per traced process. It is the same code for live tracing and
// for replay, which is what makes their output identical.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/layout.h"
#include "core/records.h"
#include "core/syscall_rules.h"
#include "core/vma_changes.h"

namespace vmatrace {

struct SyscallRule;

struct ProcessState {
  uint32_t pid = 0;
  uint32_t parent = 0;
  std::string comm;
  std::string exe;  // filename of the last exec, when seen
  Layout layout;
  bool seeded = false;  // layout known (seed, exec walk or fork copy)
  // Why the model stopped being known (an impossible change: the record
  // that could not apply, and why); empty while it is known or was never.
  std::string unknown_reason;
  uint64_t seed_ts = 0;  // records older than this are already in the seed
  bool awaiting_exec_walk = false;
  std::vector<Vma> exec_walk;  // VMAs of a kernel exec walk being collected
  // What the model unmapped because the kernel placed a new mapping there
  // (a range it found free): a sibling thread's munmap (or mremap) of it
  // came first in the kernel, under mmap_lock, but its record, made at its
  // syscall's exit after the lock was released, comes later in the stream.
  // When that record comes, these pieces stand for the range as it was
  // when that thread changed it. See Processor::take_late_clearing().
  struct EarlyClear {
    uint32_t tid = 0;  // the thread whose mapping displaced the piece
    uint64_t ts = 0;   // that syscall's exit
    Vma piece;         // what the model held there, clipped to the new mapping
  };
  std::vector<EarlyClear> early_clears;
  uint64_t lost_total = 0;
  uint64_t resyncs = 0;
  uint64_t events = 0;
  bool exited = false;
  int exit_code = 0;
};

// What applying one record did, for the printers.
struct Applied {
  bool layout_changed = false;
  LayoutChange change;
  std::optional<Vma> fault_vma;  // the VMA a fault landed in (after any stack growth)
  bool stack_grew = false;
  bool applied = true;  // false: older than the seed, or process unknown
  // The VMA changes this record caused, as the kernel's VMA code would have
  // made them (derived from the model's before/after; see vma_changes.h).
  // For a fork they are the child's (its pid: rec.fork.child_pid).
  std::vector<VmaChange> changes;
  std::string cause;  // "mmap", "fault (stack)", "exec", "fork", ...: what made them
  // The thread's ids in its own PID namespace (VMAT_REC_NS_IDS); nspid 0:
  // in the tracer's namespace, or not known.
  NsIdsRecord ns;
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) = 0;
  // A traced process exited (or the trace ended with it alive).
  virtual void on_process_end(const ProcessState&) {}
  // Whether this sink reads what the Processor derives for it (Applied's
  // VMA changes, result VMAs and fault VMA). One that only looks at the
  // layouts (`record` without printing) says no, and the Processor skips
  // that work: it is most of the frontend's cost per record.
  virtual bool wants_derived() const { return true; }
};

// Feeds one record to two sinks (the printer and a report), in order.
class RecordTee : public RecordSink {
 public:
  RecordTee(RecordSink* a, RecordSink* b) : a_(a), b_(b) {}
  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override {
    if (a_) a_->on_record(rec, applied, proc);
    if (b_) b_->on_record(rec, applied, proc);
  }
  void on_process_end(const ProcessState& p) override {
    if (a_) a_->on_process_end(p);
    if (b_) b_->on_process_end(p);
  }
  bool wants_derived() const override { return (a_ && a_->wants_derived()) || (b_ && b_->wants_derived()); }

 private:
  RecordSink* a_;
  RecordSink* b_;
};

struct ProcessorStats {
  uint64_t records = 0;
  uint64_t unknown_records = 0;
  uint64_t lost = 0;
  uint64_t resyncs = 0;
  uint64_t rejected = 0;               // impossible changes (damaged input): skipped, process unseeded
  uint64_t in_seed = 0;                // of those, syscalls in flight at a seed whose change it already held
  uint64_t store_reconciles = 0;       // VMAs taken from a syscall's own stores (its record had none)
  uint64_t kernel_stores = 0;          // VMA-tree stores seen (VMAT_EV_VMA_KERNEL records and carried ones)
  uint64_t kernel_disagreements = 0;   // VMAs the kernel's stores and the model bound differently
  uint64_t early_clears = 0;           // pieces a new mapping displaced before their unmapping's record came
  uint64_t late_clears = 0;            // unmappings applied where the kernel made them, under later mappings
  uint64_t exec_walks_incomplete = 0;  // kernel exec walks that did not run or lost VMAs: /proc read instead
};

// A syscall whose record came after mappings that the kernel made later
// over the range it cleared (see ProcessState::EarlyClear): the range as the
// model holds it now (put back after the syscall), per piece.
struct LateClearing {
  struct Range {
    uint64_t start = 0, end = 0;
    std::vector<Vma> now;       // the later mappings, clipped to [start, end)
    std::vector<Vma> now_full;  // the VMAs they were part of (merged across the edges)
  };
  std::vector<Range> ranges;
};

class Processor {
 public:
  Processor() = default;

  // Applies one record; `sink` (may be null) sees it with its effect.
  void apply(const DecodedRecord& rec, RecordSink* sink);
  // End of stream: reports every process still alive to the sink.
  void finish(RecordSink* sink);

  const ProcessState* process(uint32_t pid) const;
  std::vector<const ProcessState*> processes() const;
  // Processes that have ended, kept for summaries (layout dropped).
  const std::vector<ProcessState>& ended() const { return ended_; }
  const ProcessorStats& stats() const { return stats_; }
  uint64_t start_ts() const { return start_ts_; }
  bool keep_ended() const { return keep_ended_; }
  void set_keep_ended(bool v) { keep_ended_ = v; }
  // Derive VMA changes by inference even where the kernel's stores were
  // recorded (they are then ignored): the other side of a comparison.
  void set_infer_only(bool v) { infer_only_ = v; }

 private:
  friend class Checkpoint;  // saves and restores the state below
  ProcessState& state_for(const DecodedRecord& rec);
  void apply_syscall(ProcessState& p, const DecodedRecord& rec, Applied& out);
  void apply_fault(ProcessState& p, const DecodedRecord& rec, Applied& out);
  void apply_layout(ProcessState& p, const DecodedRecord& rec, Applied& out);
  void apply_snapshot(ProcessState& p, const DecodedRecord& rec, Applied& out);
  void seed(ProcessState& p, std::vector<Vma> vmas, uint64_t ts);
  void reconcile_from_stores(ProcessState& p, const vmat_syscall_event& e, const std::vector<KernelStore>& stores,
                             const std::vector<Vma>& before, uint64_t lo, uint64_t hi, LayoutChange& ch);
  // A syscall that clears what sibling threads' mappings (recorded before
  // it, made after it) already displaced: puts the displaced pieces back,
  // so the syscall applies to the range as the kernel had it, and returns
  // what to restore over them afterwards (restore_late_clearing()).
  LateClearing take_late_clearing(ProcessState& p, const DecodedRecord& rec, const SyscallRule& rule);
  void restore_late_clearing(Layout& l, const LateClearing& late);
  // Notes what the model holds where the kernel found room for this
  // syscall's new mapping (ProcessState::EarlyClear).
  void note_early_clears(ProcessState& p, const DecodedRecord& rec);
  void end_process(uint32_t pid, RecordSink* sink);
  // Exec-time faults (VMAT_FAULT_IN_EXEC): whether `rec` is held for the
  // new layout, and their release to the sink (applied to the layout when
  // `attribute`, else as faults of no known VMA).
  bool hold_exec_fault(ProcessState& p, const DecodedRecord& rec);
  void release_exec_faults(ProcessState& p, bool attribute, RecordSink* sink);
  // The kernel's stores for the syscall record `rec`, in the order made,
  // into `out`: those it carries (VMAT_EV_SYSCALL_STORES), then those its
  // thread sent as records of their own since its last syscall record that
  // [enter_ts, exit] brackets (the ones past the carried bound are later).
  void take_stores(const DecodedRecord& rec, uint64_t enter_ts, std::vector<KernelStore>& out);

  std::map<uint32_t, std::unique_ptr<ProcessState>> procs_;
  std::vector<ProcessState> ended_;
  std::optional<Vma> gate_vma_;
  ProcessorStats stats_;
  uint64_t start_ts_ = 0;
  bool keep_ended_ = true;
  bool derive_changes_ = true;  // only for a sink that wants them (RecordSink::wants_derived)
  // The vma family's source ("attach.vma" note): kInference when off, and
  // then no VMAT_EV_VMA_KERNEL records come.
  VmaChangeSource vma_source_ = VmaChangeSource::kInference;
  // The syscalls came from fexit alone (no entry half): a record's enter_ts
  // is its exit time, so a syscall's stores are all of its thread's pending
  // ones (those since its previous syscall), not those after enter_ts.
  bool syscall_entry_unknown_ = false;
  bool infer_only_ = false;
  // By tid. A thread's vector stays (emptied) between its syscalls, so a
  // store costs no allocation; it goes when the thread exits.
  std::map<uint32_t, std::vector<KernelStore>> pending_stores_;
  std::vector<KernelStore> taken_stores_;                   // take_stores()'s output, reused
  std::vector<std::pair<uint64_t, uint64_t>> free_ranges_;  // note_early_clears()'s, reused
  // apply_syscall()'s ranges and VMAs before, reused (derived changes take
  // `before` when a sink wants them).
  AddrRanges scratch_spans_, scratch_cleared_;
  std::vector<Vma> scratch_before_;
  // What a sink saw of the previous record, emptied and handed to the next
  // one (Applied's changes, result and removed VMAs; the kernel's result,
  // the VMAs after): no allocation per record for them.
  std::vector<VmaChange> spare_changes_;
  std::vector<Vma> spare_result_, spare_removed_, scratch_after_;
  KernelAfter scratch_kernel_after_;
  void recycle(Applied& out);
  // Faults the kernel took while an exec built the new image (after
  // exec_mmap(): writing the new stack, clearing bss), which come before the
  // exec record and belong to the address space its walk (or /proc) brings:
  // held by pid until the process is seeded again after the exec.
  struct HeldFault {
    DecodedRecord rec;
    std::string comm;  // rec.comm points here when released
  };
  struct ExecFaults {
    std::vector<HeldFault> faults;
    bool exec_seen = false;
  };
  std::map<uint32_t, ExecFaults> exec_faults_;
  // By host tid: its ids in its own PID namespace (VMAT_REC_NS_IDS), until it exits.
  std::unordered_map<uint32_t, NsIdsRecord> ns_ids_;
};

// The note naming the vma family's attach mode (Session writes
// "attach.FAMILY" for each family).
inline constexpr const char* kNoteAttachVma = "attach.vma";
inline constexpr const char* kNoteAttachSyscalls = "attach.syscalls";

// The note keys the frontend writes at the start of a stream.
inline constexpr const char* kNoteSessionStart = "session_start";
inline constexpr const char* kNoteGateVma = "gate_vma";
// A process's model became unknown (value: the pid, the record and why);
// a resync layout follows.
inline constexpr const char* kNoteModelUnknown = "model_unknown";

}  // namespace vmatrace
