#include "sym/malloc_tracker.h"

#include <unistd.h>

#include <set>

#include "core/proc_maps.h"
#include "core/syscall_names.h"
#include "core/ustack_frames.h"
#include "core/vm_flags.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }

}  // namespace

void MallocTracker::before_apply(const DecodedRecord& rec, const Processor& proc) {
  // A mapped file's build id (the debug file of a binary that is not on
  // this machine is found by it).
  if (rec.type == VMAT_REC_NOTE) {
    if (rec.note && rec.note->key == "object") unwinders_->note_object(rec.note->value);
    return;
  }
  if (rec.type == VMAT_EV_EXIT) pending_.erase(rec.hdr.tid);
  if (rec.type == VMAT_EV_EXEC || (rec.type == VMAT_EV_EXIT && (rec.exit.flags & VMAT_EXIT_GROUP))) {
    unwinders_->forget(rec.hdr.pid);
    return;
  }
  if (rec.type != VMAT_EV_SYSCALL) return;
  Pending p;
  p.sys = rec.sys;
  const ProcessState* st = proc.process(rec.hdr.pid);
  if (st) {
    p.brk_before = st->layout.brk();
    if (rec.sys.sys == VMAT_SYS_MPROTECT) {
      const Vma* v = st->layout.find(rec.sys.args[0]);
      p.was_writable = v && (v->flags & VM_WRITE) && v->end >= rec.sys.args[0] + page_up(rec.sys.args[1]);
    }
  }
  pending_[rec.hdr.tid] = p;
}

std::vector<StackFrame> MallocTracker::frames_of(const DecodedRecord& rec, const ProcessState& p) {
  Unwinder& u = unwinders_->for_process(p);
  const auto lines = all_source_lines_ ? Unwinder::SourceLines::kAll : Unwinder::SourceLines::kNone;
  if (rec.type == VMAT_REC_STACK_FRAMES) {
    std::vector<uint64_t> pcs(rec.frames.nframes);
    for (size_t i = 0; i < pcs.size(); i++) pcs[i] = ustack_frame_pc(rec, i);
    return u.symbolize(pcs, rec.hdr.ts, lines);
  }
  StackSample s;
  s.pid = rec.hdr.pid;
  s.tid = rec.hdr.tid;
  s.ts = rec.hdr.ts;
  for (int i = 0; i < VMAT_UREGS; i++) s.regs[i] = rec.ustack.regs[i];
  s.stack = rec.stack;
  return u.unwind(s, 64, lines);
}

std::optional<MallocGrowth> MallocTracker::after_apply(const DecodedRecord& rec, const Processor& proc) {
  if (!is_user_stack_record(rec.type)) return std::nullopt;
  // A frames record of a version this reader does not know has none.
  if (rec.type == VMAT_REC_STACK_FRAMES && rec.frames.nframes == 0) return std::nullopt;
  const uint64_t enter_ts = rec.type == VMAT_REC_STACK_FRAMES ? rec.frames.enter_ts : rec.ustack.enter_ts;
  auto it = pending_.find(rec.hdr.tid);
  if (it == pending_.end() || it->second.sys.enter_ts != enter_ts) return std::nullopt;
  Pending pend = it->second;
  pending_.erase(it);
  const ProcessState* st = proc.process(rec.hdr.pid);
  if (!st || !st->seeded) return std::nullopt;
  const auto& e = pend.sys;
  MallocGrowth g;
  g.pid = rec.hdr.pid;
  g.tid = rec.hdr.tid;
  g.ts = rec.hdr.ts;
  g.syscall_ts = e.enter_ts;
  uint64_t ret = static_cast<uint64_t>(e.ret);
  uint64_t at = 0;  // an address in the resulting VMA
  switch (e.sys) {
    case VMAT_SYS_BRK:
      if (e.brk <= pend.brk_before || pend.brk_before == 0) return std::nullopt;
      g.via = "brk";
      g.bytes = page_up(e.brk) - page_up(pend.brk_before);
      g.addr = page_up(pend.brk_before);
      at = e.brk - 1;
      break;
    case VMAT_SYS_MMAP:
      if (e.args[2] == 0) return std::nullopt;  // PROT_NONE: a reservation, not growth
      g.via = "mmap";
      g.bytes = page_up(e.args[1]);
      g.addr = at = ret;
      break;
    case VMAT_SYS_MREMAP:
      if (page_up(e.args[2]) <= page_up(e.args[1])) return std::nullopt;
      g.via = "mremap";
      g.bytes = page_up(e.args[2]) - page_up(e.args[1]);
      g.addr = at = ret;
      break;
    case VMAT_SYS_MPROTECT:
      if (pend.was_writable) return std::nullopt;
      g.via = "mprotect";
      g.bytes = page_up(e.args[1]);
      g.addr = at = e.args[0];
      break;
    default:
      return std::nullopt;
  }
  if (g.bytes == 0) return std::nullopt;
  if (const Vma* v = st->layout.find(at)) {
    g.vma_start = v->start;
    g.vma_end = v->end;
    g.vma_perms = v->perms();
    g.vma_name = maps_name(st->layout, *v);
  }
  g.stack = frames_of(rec, *st);
  g.attribution = attribute(g.stack);
  if (!all_source_lines_ && g.attribution.call_site && *g.attribution.call_site < g.stack.size())
    unwinders_->for_process(*st).add_source_line(g.stack[*g.attribution.call_site]);
  return g;
}

}  // namespace vmatrace
