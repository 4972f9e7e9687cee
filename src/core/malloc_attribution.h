#pragma once
// Which allocator call made memory grow, from the symbolized user stack at
// the growth syscall (brk, mmap, mremap, mprotect). Pure: the frames come
// from the unwinder (src/sym/unwinder.h) or from a test.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmatrace {

// One frame of a user stack, innermost (the syscall) first.
struct StackFrame {
  uint64_t pc = 0;
  std::string symbol;    // as in the ELF symbol table (mangled); empty: unknown
  std::string function;  // demangled symbol (C++), else the symbol
  uint64_t offset = 0;   // pc - symbol start; no symbol and no opened module: pc - the module's load base
  std::string module;    // path of the mapped object holding pc; empty: none
  std::string file;      // source file, when debug info has it (looked up only for frames shown)
  int line = 0;
  bool activation = false;  // pc is where the thread was (innermost or signal frame), not a return address
};

// The allocator entry point a symbol is, by its public name ("malloc",
// "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
// "memalign", "valloc", "pvalloc", "operator new", "operator new[]"), or
// nullopt. glibc's internal aliases (__libc_malloc, __posix_memalign, ...),
// the prefixed names of jemalloc, tcmalloc and mimalloc (je_malloc,
// tc_calloc, mi_realloc, tc_new, mi_new_aligned, mi_zalloc, ...) and every
// operator new overload (nothrow, align_val_t) map to their public name.
// free is not one: it never grows memory. Table-driven (the .cpp).
std::optional<std::string_view> allocator_name(std::string_view symbol);

// The replacement allocator ("jemalloc", "tcmalloc", "mimalloc") whose code
// a frame is in, by its module (libjemalloc.so.2, ...) or, linked
// statically, by its internal symbols (je_*, TCMalloc_*, _mi_*); nullopt
// for any other code (glibc's malloc is named by its entry points alone).
std::optional<std::string_view> allocator_library(const StackFrame& f);

struct Attribution {
  std::optional<std::string> allocator;   // nullopt: not from an allocator
  std::optional<size_t> allocator_frame;  // index of the allocator's frame
  std::optional<size_t> call_site;        // the frame that called it (or the syscall's caller)
};

// Walks from the syscall outwards: the outermost allocator frame (an entry
// point, or a replacement allocator's code) names the allocator (operator
// new calling malloc is "operator new"; jemalloc's code reached by a tail
// call from malloc, with no entry point on the stack, is "jemalloc"), the
// next frame out is the call site. Without an allocator frame, the call site is the
// caller of the syscall wrapper (frame 1), so a direct mmap names its caller.
Attribution attribute(const std::vector<StackFrame>& frames);

// One growth of the heap or of an mmap region, with the allocator and the
// call site that caused it: made by MallocTracker (src/sym/), read by the
// printers and reports.
struct MallocGrowth {
  uint32_t pid = 0, tid = 0;
  uint64_t ts = 0;                      // of the user stack record
  uint64_t syscall_ts = 0;              // enter_ts of the syscall that grew memory
  std::string via;                      // "brk", "mmap", "mremap", "mprotect"
  uint64_t bytes = 0;                   // grown by
  uint64_t addr = 0;                    // start of the grown range
  uint64_t vma_start = 0, vma_end = 0;  // the resulting VMA (0, 0: unknown)
  std::string vma_perms, vma_name;
  std::optional<uint64_t> size;  // requested size, when known (--malloc=exact)
  Attribution attribution;
  std::vector<StackFrame> stack;

  const StackFrame* call_site() const {
    return attribution.call_site && *attribution.call_site < stack.size() ? &stack[*attribution.call_site] : nullptr;
  }
};

}  // namespace vmatrace
