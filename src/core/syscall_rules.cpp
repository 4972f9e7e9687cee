#include "core/syscall_rules.h"

#include <algorithm>
#include <array>
#include <cerrno>

#include "core/records.h"
#include "core/vm_flags.h"

namespace vmatrace {
namespace {

// Every user address (mlockall() and munlockall() touch all VMAs).
constexpr uint64_t kAllUserSpace = 1ULL << 56;

// PAGE_ALIGN() as the arguments are used (no overflow check: the call succeeded).
constexpr uint64_t page_up(uint64_t x) { return (x + kPageSize - 1) & ~(kPageSize - 1); }
constexpr uint64_t page_down(uint64_t x) { return x & ~(kPageSize - 1); }

uint64_t ret_addr(const vmat_syscall_event& e) { return static_cast<uint64_t>(e.ret); }

// The kernel's VMA in the record, when it has one.
bool has_vma(const vmat_vma_info& k) { return (k.state & VMAT_VMA_VALID) != 0; }

// The pieces rules share.
void clears_nothing(const vmat_syscall_event&, const Layout&, AddrRanges&) {}

// [addr, addr + PAGE_ALIGN(len)): the range of mprotect(), madvise(), munmap().
void touches_addr_len(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints&) {
  spans.emplace_back(e.args[0], e.args[0] + page_up(e.args[1]));
}

// do_mlock() rounds start down, then the end up.
void touches_mlock_range(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints&) {
  spans.emplace_back(page_down(e.args[0]), page_up(e.args[0] + e.args[1]));
}

void touches_everything(const vmat_syscall_event&, const Layout&, AddrRanges& spans, VmaChangeHints&) {
  spans.emplace_back(0, kAllUserSpace);
}

// ---- mmap: ksys_mmap_pgoff() -> do_mmap() -> mmap_region() (mm/mmap.c, mm/vma.c) ----

void mmap_touches(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints& hints) {
  const uint64_t ret = ret_addr(e), end = ret + page_up(e.args[1]);
  spans.emplace_back(ret, end);
  hints.new_range_merges = true;  // mmap_region(): unmap what is there, then a new range
  hints.replaced_start = ret, hints.replaced_end = end;
}

bool mmap_apply(const vmat_syscall_event& e, std::string_view path, Layout& l, LayoutChange& ch) {
  const uint64_t start = ret_addr(e), prot = e.args[2], flags = e.args[3];
  Vma v;
  const auto& k = e.vma[0];
  if (has_vma(k) && k.start <= start && start < k.end) {
    v = vma_from_info(k, path);
    v.pgoff = k.pgoff + (start - k.start) / kPageSize;
  } else {
    // No kernel view (it vanished before exit): the arguments alone.
    v.flags = vm_flags_from_prot(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | l.def_flags();
    if (flags & abi::kMapShared) v.flags |= VM_SHARED | VM_MAYSHARE;
    v.pgoff = start / kPageSize;
  }
  v.start = start;
  v.end = start + page_up(e.args[1]);
  ch = l.mmap(v);
  return true;
}

// ---- munmap: __vm_munmap() -> do_vmi_munmap() (mm/mmap.c, mm/vma.c) ----

void munmap_touches(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints& hints) {
  const uint64_t end = e.args[0] + page_up(e.args[1]);
  spans.emplace_back(e.args[0], end);
  hints.replaced_start = e.args[0], hints.replaced_end = end;
}

void munmap_clears(const vmat_syscall_event& e, const Layout&, AddrRanges& cleared) {
  cleared.emplace_back(e.args[0], e.args[0] + page_up(e.args[1]));
}

bool munmap_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.munmap(e.args[0], e.args[1]);
  return true;
}

// ---- brk: SYSCALL_DEFINE1(brk) -> do_brk_flags() / do_vmi_align_munmap() (mm/mmap.c) ----

}  // namespace

uint64_t brk_changes_from(const vmat_syscall_event& e, const Layout& before) {
  const uint64_t heap = page_down(e.start_brk);
  // The model's break unknown: the whole heap.
  const uint64_t low = page_down(before.brk() ? std::min<uint64_t>(before.brk(), e.brk) : e.start_brk);
  if (low <= heap) return heap;
  // The heap VMA the lower break ends in or at (do_brk_flags() expands it,
  // do_vmi_align_munmap() cuts it): the heap below it is not touched. A heap
  // with holes (munmap'd or mprotect'ed pages: stress-ng --brk keeps tens of
  // thousands of pieces) must not be walked from start_brk on every call.
  const Vma* v = before.find(low - 1);
  return v ? std::max(heap, v->start) : low;
}

namespace {

void brk_touches(const vmat_syscall_event& e, const Layout& l, AddrRanges& spans, VmaChangeHints& hints) {
  const uint64_t lo = brk_changes_from(e, l), hi = page_up(std::max<uint64_t>(l.brk(), e.brk));
  if (hi > lo) spans.emplace_back(lo, hi);
  hints.in_place_resize = true;  // the heap's end moves
}

void brk_clears(const vmat_syscall_event& e, const Layout& l, AddrRanges& cleared) {
  if (l.brk() && page_up(e.brk) < page_up(l.brk())) cleared.emplace_back(page_up(e.brk), page_up(l.brk()));
}

bool brk_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  // The record carries the break after the call; the model's is the one before.
  l.set_brk(e.start_brk, l.brk() ? l.brk() : e.start_brk);
  ch = l.brk(e.brk);
  l.set_brk(e.start_brk, e.brk);
  return true;
}

// ---- mremap: SYSCALL_DEFINE5(mremap) -> do_mremap() (mm/mremap.c) ----

void mremap_touches(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints& hints) {
  const uint64_t old_addr = e.args[0], ret = ret_addr(e);
  spans.emplace_back(old_addr, old_addr + page_up(std::max(e.args[1], e.args[2])));
  spans.emplace_back(ret, ret + page_up(e.args[2]));
  hints.in_place_resize = ret == old_addr;
  hints.new_range_merges = ret != old_addr;
}

void mremap_clears(const vmat_syscall_event& e, const Layout&, AddrRanges& cleared) {
  if (e.args[3] & abi::kMremapDontUnmap) return;  // the old range stays mapped
  const uint64_t os = e.args[0], oe = os + page_up(e.args[1]);
  const uint64_t ns = ret_addr(e), ne = ns + page_up(e.args[2]);
  // The old range minus the new one (in place: its tail when shrinking).
  if (os < std::min(oe, ns)) cleared.emplace_back(os, std::min(oe, ns));
  if (std::max(os, ne) < oe) cleared.emplace_back(std::max(os, ne), oe);
}

bool mremap_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mremap(e.args[0], e.args[1], e.args[2], e.args[3], ret_addr(e));
  return true;
}

// ---- mprotect: do_mprotect_pkey(pkey -1) -> mprotect_fixup() (mm/mprotect.c) ----

bool mprotect_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mprotect(e.args[0], e.args[1], e.args[2]);
  return true;
}

// ---- pkey_mprotect: do_mprotect_pkey() -> mprotect_fixup() (mm/mprotect.c) ----

bool pkey_mprotect_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mprotect(e.args[0], e.args[1], e.args[2], static_cast<int>(e.args[3]));
  return true;
}

// ---- madvise: do_madvise() -> madvise_vma_behavior() (mm/madvise.c) ----

bool madvise_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.madvise(e.args[0], e.args[1], static_cast<int>(e.args[2]));
  return true;
}

// ---- mlock, mlock2, munlock: do_mlock() / SYSCALL munlock -> apply_vma_lock_flags() (mm/mlock.c) ----

bool mlock_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mlock(e.args[0], e.args[1], VM_LOCKED);
  return true;
}

bool mlock2_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  const uint64_t lock_flags = VM_LOCKED | ((e.args[2] & abi::kMlockOnFault) ? VM_LOCKONFAULT : 0);
  ch = l.mlock(e.args[0], e.args[1], lock_flags);
  return true;
}

bool munlock_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mlock(e.args[0], e.args[1], 0);
  return true;
}

// ---- mlockall, munlockall: apply_mlockall_flags() (mm/mlock.c) ----

bool mlockall_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mlockall(e.args[0]);
  return true;
}

bool munlockall_apply(const vmat_syscall_event&, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.mlockall(0);  // munlockall() is apply_mlockall_flags(0)
  return true;
}

// ---- shmat: do_shmat() -> do_mmap() of the segment's file (ipc/shm.c) ----

// The size is the segment's, not an argument: the kernel's VMA at the
// address says it. Without that VMA nothing can be applied.
bool shmat_vma_known(const vmat_syscall_event& e) {
  const auto& k = e.vma[0];
  const uint64_t at = ret_addr(e);
  return has_vma(k) && k.start == at && k.end > at;
}

void shmat_touches(const vmat_syscall_event& e, const Layout&, AddrRanges& spans, VmaChangeHints& hints) {
  if (!shmat_vma_known(e)) return;
  spans.emplace_back(ret_addr(e), e.vma[0].end);
  hints.new_range_merges = true;                                          // do_mmap() of the segment's file
  hints.replaced_start = ret_addr(e), hints.replaced_end = e.vma[0].end;  // SHM_REMAP
}

bool shmat_apply(const vmat_syscall_event& e, std::string_view path, Layout& l, LayoutChange& ch) {
  if (!shmat_vma_known(e)) return false;
  ch = l.shmat(vma_from_info(e.vma[0], path));
  return true;
}

// ---- shmdt: ksys_shmdt() -> do_vmi_align_munmap() of each VMA of the attach (ipc/shm.c) ----

void shmdt_touches(const vmat_syscall_event& e, const Layout& l, AddrRanges& spans, VmaChangeHints&) {
  for (const auto& r : l.shmdt_ranges(e.args[0])) spans.push_back(r);
}

void shmdt_clears(const vmat_syscall_event& e, const Layout& l, AddrRanges& cleared) {
  cleared = l.shmdt_ranges(e.args[0]);  // the same clearing as munmap's
}

bool shmdt_apply(const vmat_syscall_event& e, std::string_view, Layout& l, LayoutChange& ch) {
  ch = l.shmdt(e.args[0]);
  return true;
}

// ---- the rules, by syscall ----
// {touches, clears, apply, range, partial_error}; the range comes from the table.

constexpr int64_t kPartialEnomem = -ENOMEM;

constexpr SyscallRule rule_mmap{mmap_touches, clears_nothing, mmap_apply, 0, 0};
constexpr SyscallRule rule_munmap{munmap_touches, munmap_clears, munmap_apply, 0, 0};
constexpr SyscallRule rule_brk{brk_touches, brk_clears, brk_apply, 0, 0};
constexpr SyscallRule rule_mremap{mremap_touches, mremap_clears, mremap_apply, 0, 0};
constexpr SyscallRule rule_mprotect{touches_addr_len, clears_nothing, mprotect_apply, 0, kPartialEnomem};
constexpr SyscallRule rule_madvise{touches_addr_len, clears_nothing, madvise_apply, 0, kPartialEnomem};
constexpr SyscallRule rule_mlock{touches_mlock_range, clears_nothing, mlock_apply, 0, 0};
constexpr SyscallRule rule_munlock{touches_mlock_range, clears_nothing, munlock_apply, 0, 0};
constexpr SyscallRule rule_mlock2{touches_mlock_range, clears_nothing, mlock2_apply, 0, 0};
constexpr SyscallRule rule_mlockall{touches_everything, clears_nothing, mlockall_apply, 0, 0};
constexpr SyscallRule rule_munlockall{touches_everything, clears_nothing, munlockall_apply, 0, 0};
constexpr SyscallRule rule_pkey_mprotect{touches_addr_len, clears_nothing, pkey_mprotect_apply, 0, kPartialEnomem};
constexpr SyscallRule rule_shmat{shmat_touches, clears_nothing, shmat_apply, 0, 0};
constexpr SyscallRule rule_shmdt{shmdt_touches, shmdt_clears, shmdt_apply, 0, 0};

// Indexed by enum vmat_sys; ids without a row stay empty (apply == nullptr).
constexpr std::array<SyscallRule, VMAT_SYS_MAX> kRules = [] {
  std::array<SyscallRule, VMAT_SYS_MAX> t{};
#define VMAT_RULE_ROW(name, NAME, id, x86_64_nr, nargs, required, ret, result_range, ...) \
  t[VMAT_SYS_##NAME] = rule_##name;                                                       \
  t[VMAT_SYS_##NAME].range = result_range;
  VMAT_SYSCALLS(VMAT_RULE_ROW)
#undef VMAT_RULE_ROW
  return t;
}();

}  // namespace

const SyscallRule* syscall_rule(uint32_t sys) {
  if (sys >= kRules.size() || !kRules[sys].apply) return nullptr;
  return &kRules[sys];
}

bool syscall_changed_vmas(const SyscallRule& rule, int64_t ret) {
  return !syscall_failed(ret) || (rule.partial_error != 0 && ret == rule.partial_error);
}

void kernel_chose_free(const vmat_syscall_event& e, AddrRanges& out) {
  if (syscall_failed(e.ret)) return;
  const uint64_t ret = ret_addr(e);
  switch (e.sys) {
    case VMAT_SYS_MMAP:
      // A hint, or MAP_FIXED_NOREPLACE (-EEXIST over a mapping): free.
      if (!(e.args[3] & abi::kMapFixed) && e.args[1]) out.emplace_back(ret, ret + page_up(e.args[1]));
      break;
    case VMAT_SYS_MREMAP: {
      const uint64_t old_addr = e.args[0], old_len = page_up(e.args[1]), new_len = page_up(e.args[2]);
      if (e.args[3] & abi::kMremapFixed) break;
      if (ret != old_addr)
        out.emplace_back(ret, ret + new_len);  // move_vma() to get_unmapped_area()'s choice
      else if (new_len > old_len && old_len)
        out.emplace_back(old_addr + old_len, old_addr + new_len);  // vma_expandable(): free after it
      break;
    }
    default:
      break;
  }
}

std::pair<uint64_t, uint64_t> syscall_result_range(int range, const vmat_syscall_event& e) {
  const uint64_t ret = ret_addr(e);
  switch (range) {
    case VMAT_RANGE_RET_LEN1:
      return {ret, ret + e.args[1]};
    case VMAT_RANGE_RET_LEN2:
      return {ret, ret + e.args[2]};
    case VMAT_RANGE_RET:
      return {ret, e.vma[0].end};
    case VMAT_RANGE_ARG0_LEN1:
      return {e.args[0], e.args[0] + e.args[1]};
    case VMAT_RANGE_BRK:
      return {e.start_brk, e.brk};
    default:
      return {0, 0};  // VMAT_RANGE_NONE: mlockall touches every VMA, munmap and shmdt leave none
  }
}

}  // namespace vmatrace
