#include "core/processor.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "core/proc_maps.h"
#include "core/record_types.h"
#include "core/syscall_names.h"
#include "core/syscall_rules.h"
#include "core/vm_flags.h"

namespace vmatrace {
namespace {

// The kernel's own VMA from a syscall record, with its path when the record
// carried one (only vma[0] does); a VMA the model already knows at the same
// place with the same file keeps the model's path.
std::optional<Vma> kernel_truth(const ProcessState& p, const vmat_vma_info& info, std::string_view path,
                                bool has_path) {
  if (!(info.state & VMAT_VMA_VALID) || info.end <= info.start) return std::nullopt;
  Vma v = vma_from_info(info, has_path ? path : std::string_view{});
  if (!has_path && (info.state & (VMAT_VMA_FILE | VMAT_VMA_SPECIAL))) {
    const Vma* known = p.layout.find(info.start);
    if (!known) known = p.layout.find(info.end - 1);
    if (!known) return std::nullopt;  // a file we cannot name: leave the model as it is
    v.path = known->path;
    v.special = known->special;
    if (v.dev != known->dev || v.ino != known->ino) v.path = known->path;
  }
  return v;
}

// The kernel's VMA at addr as this syscall's own stores into the VMA tree
// left it (the last store over addr), or nullptr: none, or a clearing one.
const KernelStore* stored_at(const std::vector<KernelStore>& stores, uint64_t addr) {
  for (auto it = stores.rbegin(); it != stores.rend(); ++it)
    if (it->start <= addr && addr < it->end) return it->key ? &*it : nullptr;
  return nullptr;
}

// Every VMA overlapping or touching one of the spans: a merge reaches the
// VMA right before or after a range, so the spans are widened by a byte.
void append_vmas_near(const Layout& l, const AddrRanges& spans, std::vector<Vma>& out) {
  for (size_t i = 0; i < spans.size(); i++) {
    const auto [s, e] = spans[i];
    // The kernel's VMA usually repeats the syscall's range: query it once.
    if (std::find(spans.begin(), spans.begin() + i, spans[i]) != spans.begin() + i) continue;
    l.append_overlapping(s ? s - 1 : 0, e + 1 > e ? e + 1 : e, out);
  }
}

// v cut to [start, end) (which it overlaps), its offset following.
Vma clip(const Vma& v, uint64_t start, uint64_t end) {
  Vma c = v;
  c.start = std::max(v.start, start);
  c.end = std::min(v.end, end);
  c.pgoff = v.pgoff + ((c.start - v.start) >> kPageShift);
  return c;
}

// Adjacent VMAs that are each a part of `whole` (its attributes, its
// offsets) become one again: `whole` was one VMA before the Processor cut
// it at the edges of a range it replayed (take_late_clearing()).
void glue_parts(Layout& l, const Vma& whole) {
  auto cur = l.overlapping(whole.start, whole.end);
  auto part_of_whole = [&](const Vma& v) { return v.same_attributes(clip(whole, v.start, v.end)); };
  for (size_t i = 0; i < cur.size();) {
    size_t j = i;
    if (part_of_whole(cur[i]))
      while (j + 1 < cur.size() && cur[j + 1].start == cur[j].end && part_of_whole(cur[j + 1])) j++;
    if (j > i) {
      Vma glued = clip(whole, cur[i].start, cur[j].end);
      glued.anon_vma = false;
      for (size_t k = i; k <= j; k++) glued.anon_vma = glued.anon_vma || cur[k].anon_vma;
      l.reconcile(glued);
    }
    i = j + 1;
  }
}

// How long (stream time) a displaced piece waits for the record of the
// unmapping that freed it. That thread was only preempted between
// releasing mmap_lock and its syscall's exit; a piece waiting far longer
// was the model's own error (a lost record), which a resync repairs.
constexpr uint64_t kEarlyClearWaitNs = 10'000'000'000;
constexpr size_t kMaxEarlyClears = 4096;

// Everything in the layout is new (exec, fork): one vma_new per VMA.
std::vector<VmaChange> all_new(const Layout& l) {
  std::vector<VmaChange> out;
  for (auto& v : l.vmas()) out.push_back({VmaChangeKind::kNew, {}, {std::move(v)}});
  return out;
}

}  // namespace

ProcessState& Processor::state_for(const DecodedRecord& rec) {
  auto& slot = procs_[rec.hdr.pid];
  if (!slot) {
    slot = std::make_unique<ProcessState>();
    slot->pid = rec.hdr.pid;
  }
  // Compared first: the name rarely changes, and an assignment per record
  // was a string copy per event.
  if (rec.hdr.pid == rec.hdr.tid && !rec.comm.empty() && slot->comm != rec.comm) slot->comm.assign(rec.comm);
  return *slot;
}

const ProcessState* Processor::process(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : it->second.get();
}

std::vector<const ProcessState*> Processor::processes() const {
  std::vector<const ProcessState*> out;
  for (const auto& [pid, p] : procs_) out.push_back(p.get());
  return out;
}

void Processor::seed(ProcessState& p, std::vector<Vma> vmas, uint64_t ts) {
  if (gate_vma_) {
    bool have = false;
    for (const auto& v : vmas) have |= v.start == gate_vma_->start;
    if (!have) vmas.push_back(*gate_vma_);
  }
  p.layout.seed(std::move(vmas));
  p.seeded = true;
  p.seed_ts = ts;
  p.unknown_reason.clear();
  // Pieces displaced in the model the seed replaces: the unmapping each
  // waits for ended before the seed was read (its record is older: not
  // applied), so none is ever taken, and a model that went wrong (records
  // lost) holds thousands, which every later syscall would walk.
  p.early_clears.clear();
}

void Processor::apply_layout(ProcessState& p, const DecodedRecord& rec, Applied& out) {
  const auto& l = *rec.layout;
  p.layout.set_brk(l.start_brk, l.brk);
  p.layout.set_start_stack(l.start_stack);
  if (l.reason == LayoutReason::kResync) p.resyncs++, stats_.resyncs++;
  p.awaiting_exec_walk = false;
  seed(p, l.vmas, rec.hdr.ts);  // A layout read right after an exec is the exec's doing; the others
  // (attach, resync) describe what was already there.
  if (l.reason == LayoutReason::kExec || l.reason == LayoutReason::kSpawn) {
    out.changes = all_new(p.layout);
    out.cause = "exec";
  }
}

void Processor::apply_snapshot(ProcessState& p, const DecodedRecord& rec, Applied& out) {
  if (!p.awaiting_exec_walk) return;
  if (rec.snap.flags & VMAT_SNAP_LAST) {
    p.awaiting_exec_walk = false;
    // A walk that did not run, or whose VMAs did not all reach us (a full
    // ring), is not the layout: the model is unknown until /proc is read.
    const bool failed = rec.snap.flags & VMAT_SNAP_FAILED;
    if (failed || rec.snap.seq != p.exec_walk.size()) {
      stats_.exec_walks_incomplete++;
      p.unknown_reason = failed ? "exec: the kernel's walk of the new layout did not run (error " +
                                      std::to_string(rec.snap.err) +
                                      (rec.snap.err == -16 ? ", its mmap lock was busy)" : ")")
                                : "exec: " + std::to_string(p.exec_walk.size()) + " of the " +
                                      std::to_string(rec.snap.seq) + " VMAs of the kernel's walk arrived";
      p.exec_walk.clear();
      return;
    }
    seed(p, std::move(p.exec_walk), rec.hdr.ts);
    p.exec_walk.clear();
    out.changes = all_new(p.layout);
    out.cause = "exec";
    return;
  }
  p.exec_walk.push_back(vma_from_info(rec.snap.vma, rec.path));
}

void Processor::apply_syscall(ProcessState& p, const DecodedRecord& rec, Applied& out) {
  const auto& e = rec.sys;
  const SyscallRule* rule = syscall_rule(e.sys);
  // A failed call changed nothing, unless its rule says the kernel changes
  // VMAs before that error (madvise over a hole: -ENOMEM after every VMA).
  if (syscall_failed(e.ret) && !(rule && syscall_changed_vmas(*rule, e.ret))) return;
  Layout& l = p.layout;
  // The ranges this syscall may touch, and what kind of operation it is,
  // for deriving its VMA changes from the model's before and after.
  // Scratch vectors kept by the Processor: no allocation per record.
  AddrRanges& spans = scratch_spans_;
  spans.clear();
  VmaChangeHints hints;
  if (rule) rule->touches(e, l, spans, hints);
  for (const auto& k : e.vma)
    if ((k.state & VMAT_VMA_VALID) && k.end > k.start) spans.emplace_back(k.start, k.end);
  const bool kernel_view = vma_source_ != VmaChangeSource::kInference;
  std::vector<KernelStore>& stores = taken_stores_;
  take_stores(rec, syscall_entry_unknown_ ? 0 : e.enter_ts, stores);
  if (!rule) return;
  // Made before mappings whose records came first: applied to the range as
  // the kernel had it then, and those mappings put back after it.
  const LateClearing late = take_late_clearing(p, rec, *rule);
  for (const auto& st : stores) spans.emplace_back(st.start, st.end);
  // What the operation unmapped without the hook reporting it: applied
  // after the stores when the kernel's view is rebuilt.
  AddrRanges& cleared = scratch_cleared_;
  cleared.clear();
  if (kernel_view) rule->clears(e, l, cleared);
  // Taken even without a sink: a reconcile below restores ids from it, and
  // ids must not depend on who watches.
  std::vector<Vma>& before = scratch_before_;
  before.clear();
  if (before.capacity() == 0) before.reserve(8);  // usually the range and a neighbour each side
  append_vmas_near(l, spans, before);
  // A brk's result is the heap VMA at the break, not the whole heap.
  const uint64_t brk_from = rule->range == VMAT_RANGE_BRK ? brk_changes_from(e, l) : 0;
  note_early_clears(p, rec);
  LayoutChange ch;
  if (derive_changes_) {  // filled by the rule: into the vectors of the record before
    ch.removed = std::move(spare_removed_);
    ch.removed.clear();
  }
  // The result VMAs are derived below (or not wanted): the rule's own
  // would be a copy per record thrown away. What went away is only read by
  // sinks that want the derived changes.
  struct NoResults {
    Layout& l;
    NoResults(Layout& layout, bool removed) : l(layout) {
      l.set_collect_results(false);
      l.set_collect_removed(removed);
    }
    ~NoResults() {
      l.set_collect_results(true);
      l.set_collect_removed(true);
    }
    NoResults(const NoResults&) = delete;
    NoResults& operator=(const NoResults&) = delete;
  };
  bool applied = false;
  {
    NoResults no_results(l, derive_changes_);
    applied = rule->apply(e, rec.path, l, ch);
  }
  if (!late.ranges.empty()) restore_late_clearing(l, late);
  if (!applied) return;
  // Make the model agree with what the kernel reports it built: this
  // covers what the model cannot see (anon_vma compatibility decides some
  // merges in the kernel).
  for (int i = 0; i < 2; i++) {
    auto truth = kernel_truth(p, e.vma[i], rec.path, i == 0);
    if (!truth) continue;
    const Vma* cur = l.find(truth->start);
    if (cur && cur->start == truth->start && cur->end == truth->end && cur->flags == truth->flags &&
        cur->pgoff == truth->pgoff)
      continue;
    auto r = l.reconcile(*truth);
    ch.merges += r.merges;
    ch.splits += r.splits;
    // The model merged what the kernel kept apart (anon_vma, which the
    // model cannot see): a neighbour that is back to its old extent and
    // attributes is the VMA it was, not a new one.
    for (const auto& b : before)
      if (const Vma* now = l.find(b.start); now && now->end == b.end && now->same_attributes(b))
        l.restore_id(b.start, b.end, b.id);
  }
  auto [lo, hi] = syscall_result_range(rule->range, e);
  lo = std::max(lo, brk_from);
  if (!(e.vma[0].state & VMAT_VMA_VALID) && hi > lo && kernel_view)
    reconcile_from_stores(p, e, stores, before, lo, hi, ch);
  // Report the VMAs now covering the affected range, as the model holds them.
  // Only a sink reads it (replay --stats, layout queries: none).
  if (derive_changes_) {
    ch.result = std::move(spare_result_);
    ch.result.clear();
    if (hi > lo) l.append_overlapping(lo, hi, ch.result);
  }
  // After: the same (widened) spans, plus exactly the old VMAs' ranges (a
  // VMA there now either changed or was already captured; widening these
  // would catch unchanged neighbours that `before` lacks).
  if (derive_changes_) {
    out.changes = std::move(spare_changes_);
    if (kernel_view) {
      // The kernel's result over the same range, from its own stores.
      KernelAfter& k = scratch_kernel_after_;
      kernel_after(before, stores, cleared, l, k);
      stats_.kernel_disagreements += k.disagreements;
      derive_vma_changes(before, k.vmas, hints, out.changes);
      for (auto& c : out.changes) c.source = vma_source_;
    } else {
      std::vector<Vma>& after = scratch_after_;
      after.clear();
      append_vmas_near(l, spans, after);
      for (const auto& v : before) l.append_overlapping(v.start, v.end, after);
      derive_vma_changes(before, after, hints, out.changes);
    }
  }
  out.cause = syscall_name(e.sys);
  out.layout_changed = true;
  out.change = std::move(ch);
}

// Threads of one process change its VMA tree one at a time, under
// mmap_lock, but each syscall's record is made at its exit, after the lock
// is released: a thread preempted in between (munmap's exit after
// vms_complete_munmap_vmas() dropped the lock) has its record come after
// those of siblings that took the lock next. When such a sibling's new
// mapping went where the kernel found room (kernel_chose_free()), the
// range was free then, whatever the model still holds there: what it holds
// is what the late record unmaps. It is noted (EarlyClear) and displaced
// now; take_late_clearing() gives it back to the late record.
void Processor::note_early_clears(ProcessState& p, const DecodedRecord& rec) {
  const auto& e = rec.sys;
  auto& early = p.early_clears;
  std::erase_if(early, [&](const ProcessState::EarlyClear& c) { return c.ts + kEarlyClearWaitNs < rec.hdr.ts; });
  // In flight when the layout was read (or entered before tracing): the
  // seed may already hold its own mapping there.
  if (e.enter_ts < p.seed_ts || e.enter_ts == 0) return;
  free_ranges_.clear();
  kernel_chose_free(e, free_ranges_);
  for (const auto& [start, end] : free_ranges_) {
    if (p.layout.find(start) == nullptr) {
      const Vma* next = p.layout.find_next(start);
      if (next == nullptr || next->start >= end) continue;  // free in the model too: the usual case
    }
    for (const Vma& v : p.layout.overlapping(start, end)) {
      if (early.size() >= kMaxEarlyClears) early.erase(early.begin());
      early.push_back({rec.hdr.tid, rec.hdr.ts, clip(v, start, end)});
      stats_.early_clears++;
    }
  }
}

LateClearing Processor::take_late_clearing(ProcessState& p, const DecodedRecord& rec, const SyscallRule& rule) {
  LateClearing late;
  auto& early = p.early_clears;
  if (early.empty()) return late;
  const auto& e = rec.sys;
  AddrRanges cleared;
  rule.clears(e, p.layout, cleared);
  if (cleared.empty()) return late;
  // The usual case, even with many pieces waiting: none of them is this
  // syscall's to take. Answered without copying them.
  auto takes = [&](const ProcessState::EarlyClear& c) {
    if (c.tid == rec.hdr.tid || c.ts <= e.enter_ts) return false;
    return std::any_of(cleared.begin(), cleared.end(),
                       [&](const auto& r) { return r.first < c.piece.end && c.piece.start < r.second; });
  };
  if (std::none_of(early.begin(), early.end(), takes)) return late;
  // The displaced pieces this syscall unmaps: displaced by another thread's
  // mapping that exited after this syscall entered (one made after this
  // one's record could have been seen by this thread first).
  struct Taken {
    LateClearing::Range range;
    Vma piece;  // the displaced piece cut to the range
  };
  std::vector<Taken> taken;
  std::vector<ProcessState::EarlyClear> kept;
  for (const auto& c : early) {
    bool used = false;
    if (c.tid != rec.hdr.tid && c.ts > e.enter_ts) {
      for (const auto& [cs, ce] : cleared) {
        const uint64_t s = std::max(cs, c.piece.start), en = std::min(ce, c.piece.end);
        if (s >= en) continue;
        const bool overlaps_taken = std::any_of(taken.begin(), taken.end(),
                                                [&](const auto& t) { return t.range.start < en && s < t.range.end; });
        if (overlaps_taken) continue;
        LateClearing::Range r;
        r.start = s;
        r.end = en;
        taken.push_back({std::move(r), clip(c.piece, s, en)});
        // What the syscall does not unmap of the piece waits for another.
        if (c.piece.start < s) kept.push_back({c.tid, c.ts, clip(c.piece, c.piece.start, s)});
        if (en < c.piece.end) kept.push_back({c.tid, c.ts, clip(c.piece, en, c.piece.end)});
        used = true;
        break;
      }
    }
    if (!used) kept.push_back(c);
  }
  if (taken.empty()) return late;
  early = std::move(kept);
  Layout& l = p.layout;
  for (auto& [r, piece] : taken) {
    l.append_overlapping(r.start, r.end, r.now_full);
    for (const auto& v : r.now_full) r.now.push_back(clip(v, r.start, r.end));
    l.reconcile_range(r.start, r.end, {piece});
    // The piece is part of its VMA again where the rest of it still is
    // (the model had cut it there, or merged the rest into the later mapping).
    Vma whole = piece;
    if (const Vma* prev = l.find(piece.start - 1);
        prev && prev->end == piece.start && prev->pgoff + prev->pages() == piece.pgoff) {
      whole.start = prev->start;
      whole.pgoff = prev->pgoff;
    }
    if (const Vma* next = l.find(piece.end); next && next->start == piece.end) whole.end = next->end;
    glue_parts(l, whole);
    late.ranges.push_back(std::move(r));
  }
  stats_.late_clears++;
  return late;
}

void Processor::restore_late_clearing(Layout& l, const LateClearing& late) {
  for (const auto& r : late.ranges) l.reconcile_range(r.start, r.end, r.now);
  // A later mapping the model had merged with a neighbour across an edge of
  // the range is one VMA again (what is left of it: the syscall may have
  // unmapped the neighbour).
  for (const auto& r : late.ranges)
    for (const auto& whole : r.now_full) glue_parts(l, whole);
}

// bpf_find_vma() takes mmap_lock with a trylock: at the exit of one
// thread's syscall a sibling inside its own mm syscall often holds it, and
// the record then carries no VMA (vma0=- vma1=-). The syscall's own stores
// into the VMA tree, made under the lock moments before, say what the
// kernel built: its bounds (merges the model cannot predict, anon_vma) and
// the file's identity (dev, inode: "/dev/zero (deleted)" of a shared
// anonymous mapping). vm_flags come from the model: mprotect_fixup() and
// mlock set them after the store.
void Processor::reconcile_from_stores(ProcessState& p, const vmat_syscall_event& e,
                                      const std::vector<KernelStore>& stores, const std::vector<Vma>& before,
                                      uint64_t lo, uint64_t hi, LayoutChange& ch) {
  Layout& l = p.layout;
  uint64_t covered_end = lo;
  for (uint64_t addr : {lo, hi - 1}) {
    if (addr < covered_end) continue;
    const KernelStore* st = stored_at(stores, addr);
    const Vma* cur = l.find(addr);
    if (!cur) continue;
    if (!st) {
      // No store over addr: the kernel changed that VMA in place (flags)
      // or not at all. It still spans what none of this syscall's stores
      // took of its old range: a split stores the new pieces only
      // (__split_vma() -> vma_complete()), not the one whose flags change.
      // A model VMA reaching beyond that merged what the kernel refused
      // (anon_vma), possibly on one side of a piece split off on the other.
      auto was =
          std::find_if(before.begin(), before.end(), [&](const Vma& b) { return b.start <= addr && addr < b.end; });
      if (was == before.end()) continue;
      uint64_t start = was->start, end = was->end;
      bool gone = false;
      for (const auto& k : stores) {
        if (k.end <= start || k.start >= end) continue;
        if (k.start <= addr && addr < k.end) {
          gone = true;  // a clearing store over addr
          break;
        }
        if (k.end <= addr) {
          start = std::max(start, k.end);
        } else {
          end = std::min(end, k.start);
        }
      }
      if (gone || (start == cur->start && end == cur->end)) continue;
      if (start < cur->start || end > cur->end) continue;  // the model split it: not this case
      Vma t = *cur;
      t.start = start;
      t.end = end;
      t.pgoff = was->pgoff + ((start - was->start) >> kPageShift);
      covered_end = t.end;
      l.reconcile(t);
      stats_.store_reconciles++;
      continue;
    }
    if (st->end <= st->start) continue;
    covered_end = st->end;
    Vma t = *cur;
    t.start = st->start;
    t.end = st->end;
    t.pgoff = st->info.pgoff;
    // A file's (or shared anonymous memory's) offset at an address of a VMA
    // that already existed follows from the model's mapping of it: the
    // store's may be stale. 6.1's __vma_adjust() stores a VMA whose start
    // moved down (a piece merged back into it) before it sets vm_pgoff, so
    // the store still has the old offset. A new mapping's offset is the
    // store's (the record's arguments do not give it without the VMA).
    const bool same_object = (st->info.state & VMAT_VMA_FILE)
                                 ? cur->is_file() && st->info.dev == cur->dev && st->info.ino == cur->ino
                                 : !cur->is_file();
    if (e.sys != VMAT_SYS_MMAP && (cur->is_file() || cur->is_shared()) && same_object) {
      const int64_t pages = (static_cast<int64_t>(t.start) - static_cast<int64_t>(cur->start)) >> kPageShift;
      if (static_cast<int64_t>(cur->pgoff) + pages >= 0) t.pgoff = cur->pgoff + pages;
    }
    if (st->info.state & VMAT_VMA_FILE) {
      t.dev = st->info.dev;
      t.ino = st->info.ino;
      t.deleted = (st->info.state & VMAT_VMA_DELETED) != 0;
      // shmem_zero_setup(): a MAP_SHARED|MAP_ANONYMOUS mapping is a file named "/dev/zero".
      if (t.path.empty() && e.sys == VMAT_SYS_MMAP && (e.args[3] & abi::kMapAnonymous)) t.path = "/dev/zero";
      if (t.path.empty()) continue;  // a file we cannot name: leave the model as it is
    } else if (t.special.empty()) {
      t.dev = 0;
      t.ino = 0;
      t.path = InternedString();
      t.deleted = false;
    }
    if (t.start == cur->start && t.end == cur->end && cur->same_attributes(t)) continue;
    auto r = l.reconcile(t);
    ch.merges += r.merges;
    ch.splits += r.splits;
    stats_.store_reconciles++;
  }
}

void Processor::apply_fault(ProcessState& p, const DecodedRecord& rec, Applied& out) {
  uint64_t addr = rec.fault.addr;
  bool outside = p.layout.find(addr) == nullptr;
  std::vector<Vma> before;
  if (outside) {
    if (const Vma* next = p.layout.find_next(addr)) before.push_back(*next);
  }
  // Inside a VMA this only notes that the kernel now has an anon_vma there
  // (which decides later merges); outside, it may grow the stack.
  auto ch = p.layout.fault(addr);
  if (outside && !ch.result.empty()) {
    VmaChangeHints hints;
    hints.in_place_resize = true;  // expand_downwards()
    out.changes = derive_vma_changes(std::move(before), ch.result, hints);
    out.cause = "fault (stack)";
    out.stack_grew = true;
    out.layout_changed = true;
    out.change = std::move(ch);
  }
  if (!derive_changes_) return;  // no sink to see it
  if (const Vma* v = p.layout.find(addr)) out.fault_vma = *v;
}

void Processor::take_stores(const DecodedRecord& rec, uint64_t enter_ts, std::vector<KernelStore>& out) {
  out.clear();
  const uint64_t exit_ts = rec.hdr.ts;
  if (!infer_only_)
    for (size_t i = 0; i < rec.stores.size(); i++) out.push_back(kernel_store_from(rec.stores[i], exit_ts));
  auto it = pending_stores_.find(rec.hdr.tid);
  if (it == pending_stores_.end()) return;
  auto& pending = it->second;
  size_t later = 0;
  for (const auto& st : pending) {
    if (st.ts > exit_ts)
      pending[later++] = st;  // a later syscall's
    else if (st.ts >= enter_ts)
      out.push_back(st);
    // older: made outside any syscall we saw (a fault, exec): not this one's
  }
  pending.resize(later);
}

bool Processor::hold_exec_fault(ProcessState& p, const DecodedRecord& rec) {
  constexpr size_t kMaxHeld = 1 << 16;  // an exec writes a few pages; bound a runaway
  auto it = exec_faults_.find(p.pid);
  if (it == exec_faults_.end()) {
    // Inside execve but still in the old mm (copy_strings() reading argv
    // before exec_mmap()): reads of the old layout. The new image's faults
    // are the kernel's writes (create_elf_tables(), padzero()) and land
    // outside the old layout (a fresh, randomized stack and bss).
    const bool write = !(rec.fault.flags & VMAT_FAULT_NO_ERROR_CODE) && (rec.fault.error_code & 2u);
    if (!p.awaiting_exec_walk && !write && p.seeded && p.layout.find(rec.fault.addr)) return false;
    it = exec_faults_.emplace(p.pid, ExecFaults{}).first;
  }
  if (it->second.faults.size() >= kMaxHeld) return false;
  it->second.faults.push_back({rec, std::string(rec.comm)});
  return true;
}

void Processor::release_exec_faults(ProcessState& p, bool attribute, RecordSink* sink) {
  auto it = exec_faults_.find(p.pid);
  if (it == exec_faults_.end()) return;
  std::vector<HeldFault> held = std::move(it->second.faults);
  exec_faults_.erase(it);
  for (auto& h : held) {
    h.rec.comm = h.comm;
    Applied out;
    if (auto ns = ns_ids_.find(h.rec.hdr.tid); ns != ns_ids_.end()) out.ns = ns->second;
    // The layout read after the exec already holds what these faults did
    // (the stack the kernel set up): they only find their VMA in it.
    out.applied = attribute && p.seeded && p.layout.find(h.rec.fault.addr);
    if (out.applied) apply_fault(p, h.rec, out);
    if (sink) sink->on_record(h.rec, out, &p);
  }
}

void Processor::end_process(uint32_t pid, RecordSink* sink) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  release_exec_faults(*it->second, /*attribute=*/false, sink);
  if (sink) sink->on_process_end(*it->second);
  if (keep_ended_) {
    ProcessState summary;
    summary.pid = it->second->pid;
    summary.parent = it->second->parent;
    summary.comm = it->second->comm;
    summary.exe = it->second->exe;
    summary.lost_total = it->second->lost_total;
    summary.resyncs = it->second->resyncs;
    summary.events = it->second->events;
    summary.exited = it->second->exited;
    summary.exit_code = it->second->exit_code;
    ended_.push_back(std::move(summary));
  }
  procs_.erase(it);
}

void Processor::apply(const DecodedRecord& rec, RecordSink* sink) {
  stats_.records++;
  if (start_ts_ == 0) start_ts_ = rec.hdr.ts;
  derive_changes_ = sink != nullptr && sink->wants_derived();
  Applied out;
  if (rec.type == VMAT_REC_NS_IDS || rec.type == VMAT_EV_NS_IDS) {
    ns_ids_[rec.hdr.tid] = *rec.ns_ids;
    return;  // shown on the thread's own records
  }
  if (!ns_ids_.empty())  // nothing to look up for a trace that has no container
    if (auto it = ns_ids_.find(rec.hdr.tid); it != ns_ids_.end()) out.ns = it->second;
  if (rec.type == VMAT_REC_NOTE) {
    if (rec.note->key == kNoteSessionStart) start_ts_ = rec.hdr.ts;
    if (rec.note->key == kNoteGateVma) gate_vma_ = parse_maps_line(rec.note->value);
    if (rec.note->key == kNoteAttachSyscalls) syscall_entry_unknown_ = rec.note->value == "fentry";
    if (rec.note->key == kNoteAttachVma && !infer_only_)
      vma_source_ = rec.note->value == "raw_tracepoint" ? VmaChangeSource::kMapleTree
                    : rec.note->value == "fentry"       ? VmaChangeSource::kFentry
                    : rec.note->value == "kprobe"       ? VmaChangeSource::kKprobe
                                                        : VmaChangeSource::kInference;
    if (sink) sink->on_record(rec, out, nullptr);
    return;
  }
  if (rec.type == VMAT_EV_FS) return;  // its effect follows as VMAT_REC_FILE_DELETED
  if (rec.type == VMAT_EV_VMA_KERNEL) {
    if (infer_only_) return;
    // Held until the syscall record (written at its exit) arrives; folded
    // into that syscall's VMA changes, not shown on their own. Nobody to
    // fold them for: nothing to hold.
    stats_.kernel_stores++;
    vma_source_ = vma_change_source_of(rec.vmak.source);
    // Kept even without a sink: a syscall whose record carries no VMA takes
    // the kernel's result from them (reconcile_from_stores()).
    auto& v = pending_stores_[rec.hdr.tid];
    constexpr size_t kMaxPending = 1 << 16;  // stores outside syscalls (faults) pile up otherwise
    if (v.size() >= kMaxPending) v.erase(v.begin(), v.begin() + kMaxPending / 2);
    v.push_back(kernel_store_from(rec.vmak));
    return;
  }
  if (rec.type == VMAT_REC_HOST_PATH) {  // changes no layout: only said
    if (sink) sink->on_record(rec, out, nullptr);
    return;
  }
  if (rec.type == VMAT_REC_FILE_DELETED) {
    for (auto& [pid, st] : procs_) st->layout.mark_deleted(rec.file_deleted->dev, rec.file_deleted->ino);
    if (sink) sink->on_record(rec, out, nullptr);
    return;
  }
  bool known_type = rec.type == VMAT_EV_SYSCALL || rec.type == VMAT_EV_FAULT || rec.type == VMAT_EV_FORK ||
                    rec.type == VMAT_EV_EXEC || rec.type == VMAT_EV_EXIT || rec.type == VMAT_EV_VMA_SNAPSHOT ||
                    rec.type == VMAT_REC_LAYOUT || rec.type == VMAT_REC_LOSS;
  if (!known_type) {
    stats_.unknown_records++;
    return;
  }
  if (!rec.stores.empty() && !infer_only_) {
    stats_.kernel_stores += rec.stores.size();
    vma_source_ = vma_change_source_of(rec.stores.source());
  }
  ProcessState& p = state_for(rec);
  p.events++;
  if (rec.type == VMAT_EV_FAULT && (rec.fault.flags & VMAT_FAULT_IN_EXEC) && hold_exec_fault(p, rec)) return;
  bool fresh = !p.seeded || rec.hdr.ts >= p.seed_ts;
  // The Layout refuses impossible changes (an unaligned or empty range, an
  // overlap) by throwing. They come from damaged or hostile recordings, never
  // from the kernel: skip the record, and stop trusting this process's model
  // (its records are not applied) until a full layout reseeds it.
  try {
    switch (rec.type) {
      case VMAT_EV_SYSCALL:
        if (p.seeded && fresh && !p.awaiting_exec_walk)
          apply_syscall(p, rec, out);
        else
          out.applied = false;
        break;
      case VMAT_EV_FAULT:
        if (p.seeded && fresh && !p.awaiting_exec_walk)
          apply_fault(p, rec, out);
        else
          out.applied = false;
        break;
      case VMAT_EV_FORK:
        if (!(rec.fork.flags & VMAT_FORK_THREAD) && (rec.fork.flags & VMAT_FORK_TRACED)) {
          auto& child = procs_[rec.fork.child_pid];
          child = std::make_unique<ProcessState>();
          child->pid = rec.fork.child_pid;
          child->parent = p.pid;
          child->comm = p.comm;
          child->exe = p.exe;
          if (p.seeded) {
            child->layout.fork_from(p.layout);
            child->seeded = true;
            child->seed_ts = rec.hdr.ts;
            // dup_mmap(): the child's VMAs are new ones (they keep the parent's ids).
            out.changes = all_new(child->layout);
            out.cause = "fork";
          }
        }
        break;
      case VMAT_EV_EXEC:
        p.exe = std::string(rec.path);
        p.layout.seed({});
        p.early_clears.clear();     // of the old mm
        p.layout.set_def_flags(0);  // a new mm: mlockall(MCL_FUTURE) does not survive exec
        p.layout.set_brk(rec.exec.start_brk, rec.exec.brk);
        p.layout.set_start_stack(rec.exec.start_stack);
        p.seeded = false;
        p.awaiting_exec_walk = true;
        p.exec_walk.clear();
        break;
      case VMAT_EV_VMA_SNAPSHOT:
        apply_snapshot(p, rec, out);
        break;
      case VMAT_REC_LAYOUT:
        apply_layout(p, rec, out);
        break;
      case VMAT_REC_LOSS:
        p.lost_total = rec.loss->lost_total;
        stats_.lost += rec.loss->lost;
        break;
      case VMAT_EV_EXIT:
        if (rec.exit.flags & VMAT_EXIT_GROUP) {
          p.exited = true;
          p.exit_code = rec.exit.exit_code;
        }
        break;
    }
  } catch (const std::exception& ex) {
    stats_.rejected++;
    const NsIdsRecord ns = out.ns;
    out = Applied{};
    out.applied = false;
    out.ns = ns;
    if (rec.type == VMAT_EV_SYSCALL && p.seed_ts && rec.sys.enter_ts < p.seed_ts && rec.hdr.ts >= p.seed_ts) {
      // In flight while the layout was read: its change (a mremap that
      // moved) is already in the seed, and cannot happen twice.
      stats_.in_seed++;
    } else {
      p.seeded = false;
      p.unknown_reason =
          std::string(rec.type == VMAT_EV_SYSCALL ? syscall_name(rec.sys.sys) : record_type_name(rec.type)) + ": " +
          ex.what();
    }
  }
  if (sink) sink->on_record(rec, out, &p);
  recycle(out);
  if (auto held = exec_faults_.find(p.pid); held != exec_faults_.end()) {
    if (rec.type == VMAT_EV_EXEC)
      held->second.exec_seen = true;
    else if (held->second.exec_seen ? p.seeded && !p.awaiting_exec_walk
                                    : rec.type == VMAT_EV_SYSCALL || rec.type == VMAT_REC_LAYOUT)
      // Seeded after the exec: in the new layout. A syscall (or a resync)
      // before any exec: the exec failed early, they were the old one's.
      release_exec_faults(p, /*attribute=*/true, sink);
  }
  if (rec.type == VMAT_EV_EXIT) {
    pending_stores_.erase(rec.hdr.tid);
    ns_ids_.erase(rec.hdr.tid);
  }
  // The stores an exec made in the new mm (setup_arg_pages() moving and
  // growing the stack, after exec_mmap() made it current's) came before its
  // record: the exec walk or /proc stands for them. With fexit-only
  // syscalls they would otherwise join the first syscall after the exec.
  if (rec.type == VMAT_EV_EXEC) {
    pending_stores_.erase(rec.hdr.tid);
    pending_stores_.erase(rec.exec.old_tid);  // de_thread(): the exec'ing thread takes the leader's tid
  }
  if (rec.type == VMAT_EV_EXIT && (rec.exit.flags & VMAT_EXIT_GROUP)) end_process(rec.hdr.pid, sink);
}

void Processor::recycle(Applied& out) {
  if (!derive_changes_) return;  // nothing was derived into them (replay --stats, record)
  // Kept when larger than the spare held: a vector stays at the size the
  // records need, and a big one (a munmap of thousands of VMAs) is kept too.
  auto keep = [](auto& from, auto& spare) {
    if (from.capacity() > spare.capacity()) spare = std::move(from);
  };
  recycle_vma_changes(out.changes);
  keep(out.changes, spare_changes_);
  keep(out.change.result, spare_result_);
  keep(out.change.removed, spare_removed_);
}

void Processor::finish(RecordSink* sink) {
  std::vector<uint32_t> pids;
  for (const auto& [pid, p] : procs_) pids.push_back(pid);
  for (auto pid : pids) end_process(pid, sink);
}

}  // namespace vmatrace
