#include "sym/stack_freezer.h"

#include "core/ustack_frames.h"

namespace vmatrace {

std::vector<std::byte> StackFreezer::freeze(const DecodedRecord& ustack, const Processor& proc) {
  frozen_++;
  StackSample s;
  s.pid = ustack.hdr.pid;
  s.tid = ustack.hdr.tid;
  for (int i = 0; i < VMAT_UREGS; i++) s.regs[i] = ustack.ustack.regs[i];
  s.stack = ustack.stack;
  std::vector<uint64_t> pcs;
  const ProcessState* st = proc.process(ustack.hdr.pid);
  if (st && st->seeded)
    pcs = cache_->for_process(*st).unwind_pcs(s, VMAT_USTACK_FRAMES_MAX);
  else
    pcs.push_back(s.regs[VMAT_UREG_IP] | VMAT_USTACK_PC_EXACT);
  return encode_ustack_frames(ustack.hdr, ustack.ustack.enter_ts, ustack.ustack.sys, pcs);
}

void StackFreezer::observe(const DecodedRecord& rec) {
  if (rec.type == VMAT_EV_EXEC || (rec.type == VMAT_EV_EXIT && (rec.exit.flags & VMAT_EXIT_GROUP)))
    cache_->forget(rec.hdr.pid);
}

}  // namespace vmatrace
