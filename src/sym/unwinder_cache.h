#pragma once
// One Unwinder per traced process, kept while its file mappings stay the
// same: shared by the recorder's unwinding of user stacks (StackFreezer)
// and the malloc stage's symbolization (MallocTracker), so a live trace
// opens each process's ELF files once.

#include <cstdint>
#include <map>
#include <memory>
#include <string_view>

#include "core/processor.h"
#include "sym/jit_symbols.h"
#include "sym/unwinder.h"

namespace vmatrace {

class UnwinderCache {
 public:
  // live: the traced processes exist, so open their files through
  // /proc/PID/root (containers); a recording opens the paths as they are.
  // symbols: where debug files are looked for besides the machine's own.
  explicit UnwinderCache(bool live, SymbolSources symbols = {});

  // The unwinder of p's current file mappings.
  Unwinder& for_process(const ProcessState& p);
  // p ended or exec'd: its unwinder goes (and, live, its perf map file is
  // not read again).
  void forget(uint32_t pid) {
    unwinders_.erase(pid);
    jit_.forget_live(pid);
  }
  // An "object" note of the recording ("MAJ:MIN INO BUILD-ID PATH"): with
  // --debug-dir, PATH's debug file is looked up by that build id when PATH
  // itself cannot be opened (a recording replayed elsewhere).
  void note_object(std::string_view note);
  // Names of JIT code: a recording's jit_map records go here before its
  // stream is replayed (they are written at the processes' exits, after
  // the growths they name); live, the perf map files are read as needed.
  JitSymbols& jit() { return jit_; }

 private:
  struct Cached {
    std::unique_ptr<Unwinder> unwinder;
    const Layout* layout = nullptr;  // the model it was built from
    uint64_t file_generation = 0;    // and that model's Layout::file_generation() then
  };
  bool live_;
  SymbolSources symbols_;
  JitSymbols jit_;
  FrameCache frames_;                     // shared by the unwinders below (declared first: outlives them)
  std::map<uint32_t, Cached> unwinders_;  // by pid
};

}  // namespace vmatrace
