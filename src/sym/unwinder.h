#pragma once
// Unwinds a user stack snapshot (registers + the top of the stack, copied by
// BPF at a syscall) with elfutils libdw, from the binaries' CFI (.eh_frame /
// .debug_frame), as perf --call-graph=dwarf does, and symbolizes each frame
// (symbol, offset, C++ demangled). Source lines (file:line where debug info
// exists) are looked up only for the frames asked for: the first lookup in
// a module makes libdw read and inflate that module's whole DWARF (about
// 0.5 s for libc's), which a frame nobody prints must not cost.
//
// One Unwinder per process: the ELF files of its mappings are opened once
// and reused until the set of mapped objects changes (dlopen, exec).

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/malloc_attribution.h"
#include "sym/jit_symbols.h"
#include "sym/line_cache.h"
#include "vmatrace/abi/events.h"

namespace vmatrace {

struct DebuginfoSearch;  // sym/debuginfo.h

// A file mapping of the process: where the object's file offset 0 would be
// (start - pgoff) is its load base.
struct ModuleMapping {
  std::string path;  // as the process sees it
  uint64_t start = 0, end = 0;
  uint64_t offset = 0;  // file offset of start, bytes
  bool operator==(const ModuleMapping&) const = default;
};

// Where symbols come from besides the binaries and the machine's own
// debug directories (docs/malloc.md, "How symbols are found").
struct SymbolSources {
  std::vector<std::string> debug_dirs;  // --debug-dir: debug files by build id
  bool debuginfod = false;              // ask the DEBUGINFOD_URLS servers
  // Build ids of the recording's objects by path (its "object" notes).
  std::map<std::string, std::string> build_ids;
  // Source lines found before, kept across runs (LineCache::default_dir();
  // sym/line_cache.h); empty: none.
  std::string line_cache_dir;
};

// A user stack at one moment, as a VMAT_EV_USER_STACK record carries it.
struct StackSample {
  uint32_t pid = 0, tid = 0;
  uint64_t ts = 0;                   // when it was taken (which JIT code was where)
  uint64_t regs[VMAT_UREGS] = {};    // DWARF order
  std::span<const std::byte> stack;  // copied from regs[VMAT_UREG_SP]
};

// Symbolized frames and source lines shared by the Unwinders of every
// process, keyed by the object's build id and the address's offset in it:
// elfutils reads a module's DWARF once per Dwfl (and inflates it when its
// sections are compressed, as libc6-dbg's are: ~0.5 s for libc), so without
// this every new process (a shell's children, a forking server's workers)
// and every rebuilt Unwinder (each dlopen) paid that again for the same few
// call sites.
class FrameCache {
 public:
  struct Key {
    uint64_t id0 = 0, id1 = 0;  // the build id's first 16 bytes
    uint64_t offset = 0;        // from the module's start; bit 63: activation
    bool operator==(const Key&) const = default;
  };
  FrameCache();
  ~FrameCache();
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;

  const StackFrame* find(const Key& k) const;
  void insert(const Key& k, const StackFrame& f);
  size_t size() const { return frames_.size(); }

  // file:line (empty, 0: no debug info there) of the address k.offset into
  // the object with k's build id (no activation bit: the address looked
  // up), through one Dwfl per object for the run, opened from `file` (a
  // path of it that opens now) at its first look-up. Null when the object
  // cannot be opened from there.
  // search: where its separate debug info is looked for (the Unwinders').
  const std::pair<std::string, int>* source_line(const Key& k, const char* file, const DebuginfoSearch& search);
  size_t source_lines() const { return lines_.size(); }  // looked up so far
  size_t objects() const { return objects_.size(); }     // Dwfls opened for them
  // Lines kept across runs: looked in before any DWARF is read, and given
  // every line found.
  void keep_lines_in(std::unique_ptr<LineCache> disk);

 private:
  struct Hash {
    size_t operator()(const Key& k) const;
  };
  struct Object;  // one object's own Dwfl (unwinder.cpp)
  std::unordered_map<Key, StackFrame, Hash> frames_;
  std::unordered_map<Key, std::pair<std::string, int>, Hash> lines_;
  std::unordered_map<Key, std::unique_ptr<Object>, Hash> objects_;  // offset 0
  std::unique_ptr<LineCache> disk_;
};

class Unwinder {
 public:
  // root: prefix for opening the mappings' paths ("/proc/PID/root" while
  // the process lives, "" for the host's view). shared: frames symbolized
  // by other processes' Unwinders (it must outlive this one), or none.
  // jit (optional, outlives this): names for frames in no module.
  // sources (optional, outlives this): debug directories and build ids.
  Unwinder(uint32_t pid, std::vector<ModuleMapping> modules, std::string root, FrameCache* shared = nullptr,
           JitSymbols* jit = nullptr, const SymbolSources* sources = nullptr);
  ~Unwinder();
  Unwinder(const Unwinder&) = delete;
  Unwinder& operator=(const Unwinder&) = delete;

  const std::vector<ModuleMapping>& modules() const { return modules_; }
  // Frames from the syscall outwards, at most max_frames. Frames that
  // cannot be symbolized keep their pc and module; the unwind stops where
  // the CFI or the copied stack ends. Never throws for bad input. With
  // SourceLines::kNone no frame has its source line yet: add_source_line()
  // looks up those of the frames that are shown.
  enum class SourceLines { kAll, kNone };
  std::vector<StackFrame> unwind(const StackSample& s, size_t max_frames = 64, SourceLines lines = SourceLines::kAll);
  // The same unwind, unsymbolized: each frame's pc, with
  // VMAT_USTACK_PC_EXACT set when it is the exact instruction (the innermost
  // frame, a signal frame) rather than a return address. What a recording
  // keeps of a user stack by default (core/ustack_frames.h).
  std::vector<uint64_t> unwind_pcs(const StackSample& s, size_t max_frames = 64);
  // Symbolizes pcs as unwind_pcs() gives them (unwind() is
  // symbolize(unwind_pcs())). ts: when the stack was taken (which JIT code
  // was where).
  std::vector<StackFrame> symbolize(std::span<const uint64_t> pcs, uint64_t ts = 0,
                                    SourceLines lines = SourceLines::kAll);
  // Fills f.file and f.line from the debug info of f's module, if it has
  // any (f from this Unwinder's unwind() or symbolize()). Cached by address,
  // and in the shared FrameCache by build id.
  void add_source_line(StackFrame& f);
  // Why the Dwfl could not be set up, empty when it could.
  const std::string& error() const { return error_; }

 private:
  struct State;
  void name_by_mapping(StackFrame& f, bool exact) const;
  std::vector<ModuleMapping> modules_;
  std::unique_ptr<State> state_;
  std::string error_;
};

// The module of a frame named from a perf map.
inline constexpr const char* kJitModule = "[jit]";

// "Foo::bar(int)" for "_ZN3Foo3barEi"; the input when it is not a C++ name.
std::string demangle(const std::string& symbol);

}  // namespace vmatrace
