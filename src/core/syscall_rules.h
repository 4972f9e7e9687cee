#pragma once
// The model's rule for each traced syscall, in one place: which address
// ranges it may touch (where its VMA changes are looked for), what it unmaps
// (for rebuilding the kernel's view), and the Layout operation that mirrors
// the kernel function doing the work. The Processor dispatches on these.
//
// The table is indexed by enum vmat_sys and built from VMAT_SYSCALLS
// (include/vmatrace/abi/syscalls.h): a row there without a rule here does
// not compile. Where a syscall's result VMAs are comes from the row's
// VMAT_RANGE_* column (syscall_result_range()).

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/layout.h"
#include "core/vma_changes.h"
#include "vmatrace/abi/events.h"
#include "vmatrace/abi/syscalls.h"

namespace vmatrace {

// [start, end) address ranges.
using AddrRanges = std::vector<std::pair<uint64_t, uint64_t>>;

struct SyscallRule {
  // The ranges a successful call may change, as the model holds them before
  // it (the kernel's own VMAs in the record are added by the caller), and
  // what kind of change it is, for derive_vma_changes().
  void (*touches)(const vmat_syscall_event& e, const Layout& before, AddrRanges& spans, VmaChangeHints& hints);
  // What it unmaps, which the kernel's store hooks may not report (on 6.18
  // maple_tree:ma_write misses the clearing of munmap'd ranges).
  void (*clears)(const vmat_syscall_event& e, const Layout& before, AddrRanges& cleared);
  // The model operation. `path` is vma[0]'s file. False: the record does
  // not say enough to apply it (the layout is left as it was).
  bool (*apply)(const vmat_syscall_event& e, std::string_view path, Layout& l, LayoutChange& ch);
  int range;  // VMAT_RANGE_*: the table's column
  // The error (-errno) a call may return after the kernel made changes
  // anyway, which `apply` then mirrors; 0: a failed call changed nothing.
  // madvise() and mprotect() walk the VMAs of their range: madvise_walk_vmas()
  // skips holes and returns -ENOMEM after changing every VMA there,
  // do_mprotect_pkey() stops at a hole with -ENOMEM after changing those
  // before it. The Layout operations walk the same way.
  int64_t partial_error;
};

// Whether the call changed VMAs: it succeeded, or it failed with its rule's
// partial_error.
bool syscall_changed_vmas(const SyscallRule& rule, int64_t ret);

// The rule of syscall `sys`; nullptr for an id the table does not have.
const SyscallRule* syscall_rule(uint32_t sys);

// [lo, hi) holding the VMAs a successful call results in, from its range
// column; lo == hi when it leaves none (VMAT_RANGE_NONE).
std::pair<uint64_t, uint64_t> syscall_result_range(int range, const vmat_syscall_event& e);

// The lowest address a brk() may change, with `before` the model before it:
// the start of the heap VMA that holds (or ends at) the lower of the old
// and new breaks; start_brk when the model's break is unknown. A brk's
// result and its VMA changes are looked for from there, not from start_brk.
uint64_t brk_changes_from(const vmat_syscall_event& e, const Layout& before);

// The ranges a successful call put a mapping in because the kernel found
// them free (get_unmapped_area() for an mmap without MAP_FIXED and for a
// mremap that moved without MREMAP_FIXED, the free pages after a VMA that
// mremap grew in place): nothing was mapped there when the kernel made the
// change, whatever the model still holds.
void kernel_chose_free(const vmat_syscall_event& e, AddrRanges& out);

// A raw return value that is -errno (IS_ERR_VALUE(): -MAX_ERRNO..-1).
inline constexpr int64_t kMaxErrno = 4095;
inline bool syscall_failed(int64_t ret) { return ret < 0 && ret >= -kMaxErrno; }

}  // namespace vmatrace
