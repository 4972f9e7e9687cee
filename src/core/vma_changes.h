#pragma once
// VMA changes "as the kernel made them", inferred from two views of the same
// address range: the VMAs before and after one operation (a syscall, a
// stack-growing fault, an exec, a fork). The Layout applies the kernel's
// rules; this turns its before/after into the steps mm/vma.c takes:
// __split_vma(), vms_complete_munmap_vmas() (removal), vma_merge_new_range()
// / vma_merge_existing_range() (merge), vma_expand() / vma_shrink() and
// expand_downwards() (resize in place), mprotect_fixup() (flags in place),
// move_vma() (mremap to a new place).
//
// Pure: no I/O, no kernel access; the same on every kernel ("inference").

#include <cstdint>
#include <string>
#include <vector>

#include "core/kernel_view.h"
#include "core/layout.h"

namespace vmatrace {

enum class VmaChangeKind { kNew, kRemove, kMerge, kSplit, kExpand, kShrink, kFlags, kMove, kUpdate };
const char* vma_change_kind_name(VmaChangeKind k);  // "vma_new", "vma_split", ...

struct VmaChange {
  VmaChangeKind kind = VmaChangeKind::kNew;
  // kNew: to = [new]; kRemove: from = [gone]; kSplit: from = [whole], to =
  // pieces in address order; kMerge: from = parts (a part with id 0 is the
  // new range itself), to = [result]; kExpand/kShrink/kFlags/kUpdate/kMove:
  // from = [old], to = [new]. Split pieces that never existed on their own
  // (they were removed or merged right away) carry id 0 unless they kept
  // the original VMA's id (__split_vma() keeps the lower piece's vma).
  std::vector<Vma> from, to;
  VmaChangeSource source = VmaChangeSource::kInference;  // whose view of the ranges this is
};

struct VmaChangeHints {
  // The operation maps a new range (mmap, brk into nothing, mremap's
  // destination): growth into it is a merge of a new range (mmap_region() ->
  // vma_merge_new_range()), not a resize of an existing VMA.
  bool new_range_merges = false;
  // Whatever was in [replaced_start, replaced_end) is unmapped by the
  // operation itself (munmap, mmap over existing mappings, mremap over its
  // destination): VMAs there go away even if new ones take the same range.
  uint64_t replaced_start = 0, replaced_end = 0;
  // brk / mremap in place / stack growth: a VMA keeping its id and losing
  // one end is resized (vma_shrink(), do_vmi_align_munmap() on the tail),
  // not split.
  bool in_place_resize = false;
};

// Attributes /proc would show (and the id) equal: the anon_vma belief is
// not a visible change.
bool vma_visibly_equal(const Vma& a, const Vma& b);

// `before` and `after` hold every VMA that overlaps the touched range, in
// any order, each whole. VMAs equal on both sides are left out.
// Taken by value: callers that are done with them move them in.
std::vector<VmaChange> derive_vma_changes(std::vector<Vma> before, std::vector<Vma> after,
                                          const VmaChangeHints& hints = {});
// The same for a caller that derives per record and reuses its vectors:
// `before` and `after` are sorted in place (their capacity kept), and the
// changes replace what `out` held. Their from/to vectors come from the ones
// recycle_vma_changes() gave back on this thread, if any: no allocation per
// change once the pool has filled.
void derive_vma_changes(std::vector<Vma>& before, std::vector<Vma>& after, const VmaChangeHints& hints,
                        std::vector<VmaChange>& out);
// Empties `changes` (its capacity kept), giving the from/to vectors of its
// elements to this thread's later derive_vma_changes().
void recycle_vma_changes(std::vector<VmaChange>& changes);

}  // namespace vmatrace
