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
  uint64_t offset = 0;   // pc - symbol start
  std::string module;    // path of the mapped object holding pc; empty: none
  std::string file;      // source file, when debug info has it
  int line = 0;
};

// The allocator entry point a symbol is, by its public name ("malloc",
// "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
// "memalign", "valloc", "pvalloc", "operator new", "operator new[]"), or
// nullopt. glibc's internal aliases (__libc_malloc, __posix_memalign, ...)
// and every operator new overload (nothrow, align_val_t) map to their public
// name. free is not one: it never grows memory.
std::optional<std::string_view> allocator_name(std::string_view symbol);

struct Attribution {
  std::optional<std::string> allocator;  // nullopt: not from an allocator
  std::optional<size_t> allocator_frame; // index of the allocator's frame
  std::optional<size_t> call_site;       // the frame that called it (or the syscall's caller)
};

// Walks from the syscall outwards: the outermost allocator frame names the
// allocator (operator new calling malloc is "operator new"), the next frame
// out is the call site. Without an allocator frame, the call site is the
// caller of the syscall wrapper (frame 1), so a direct mmap names its caller.
Attribution attribute(const std::vector<StackFrame>& frames);

}  // namespace vmatrace
