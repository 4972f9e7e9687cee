#pragma once
// Unwinds each user stack BPF copied (VMAT_EV_USER_STACK) as it arrives and
// gives the VMAT_REC_STACK_FRAMES record that a recording keeps in its
// place: the return addresses, not the stack memory (which can hold keys,
// passwords, request data). Replay and every report symbolize those frames
// exactly as they would have unwound the raw stack (MallocTracker).

#include <cstddef>
#include <memory>
#include <vector>

#include "core/processor.h"
#include "core/records.h"
#include "sym/unwinder_cache.h"

namespace vmatrace {

class StackFreezer {
 public:
  explicit StackFreezer(std::shared_ptr<UnwinderCache> cache) : cache_(std::move(cache)) {}

  // The frames record for `ustack`, unwound against proc's current model of
  // its process (the layout the growth syscall left). A process with no
  // known layout keeps just the instruction pointer.
  std::vector<std::byte> freeze(const DecodedRecord& ustack, const Processor& proc);
  // Every record the stream carries: a process's unwinder goes at its exec
  // and its exit.
  void observe(const DecodedRecord& rec);
  uint64_t frozen() const { return frozen_; }

 private:
  std::shared_ptr<UnwinderCache> cache_;
  uint64_t frozen_ = 0;
};

}  // namespace vmatrace
