#pragma once
// One Unwinder per traced process, kept while its file mappings stay the
// same: shared by the recorder's unwinding of user stacks (StackFreezer)
// and the malloc stage's symbolization (MallocTracker), so a live trace
// opens each process's ELF files once.

#include <cstdint>
#include <map>
#include <memory>

#include "core/processor.h"
#include "sym/unwinder.h"

namespace vmatrace {

class UnwinderCache {
 public:
  // live: the traced processes exist, so open their files through
  // /proc/PID/root (containers); a recording opens the paths as they are.
  explicit UnwinderCache(bool live) : live_(live) {}

  // The unwinder of p's current file mappings.
  Unwinder& for_process(const ProcessState& p);
  // p ended or exec'd: its unwinder goes.
  void forget(uint32_t pid) { unwinders_.erase(pid); }

 private:
  struct Cached {
    std::unique_ptr<Unwinder> unwinder;
    const Layout* layout = nullptr;  // the model it was built from
    uint64_t file_generation = 0;    // and that model's Layout::file_generation() then
  };
  bool live_;
  FrameCache frames_;                     // shared by the unwinders below (declared first: outlives them)
  std::map<uint32_t, Cached> unwinders_;  // by pid
};

}  // namespace vmatrace
