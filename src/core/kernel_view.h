#pragma once
// The kernel's own view of one operation on a VMA tree: the stores the vma
// family recorded (bpf/vma.bpf.c) between a syscall's enter and exit, laid
// over the VMAs that were there before. What comes out is the set of VMAs
// the kernel holds over the touched range afterwards, with each one's
// identity (which vm_area_struct it is), ready for derive_vma_changes().
//
// Pure: no I/O, no kernel access; unit-tested with hand-made stores.

#include <cstdint>
#include <utility>
#include <vector>

#include "core/layout.h"
#include "vmatrace/abi/events.h"

namespace vmatrace {

// Where a VMA change came from: the kernel's stores (by hook) or the
// layout model's rules.
enum class VmaChangeSource { kInference, kMapleTree, kFentry, kKprobe };
const char* vma_change_source_name(VmaChangeSource s);  // "inference", "maple_tree", ...
VmaChangeSource vma_change_source_of(uint32_t vmat_vmak_source);

// One store into the VMA tree: [start, end) now holds the VMA `key` (0:
// nothing). `info` is the VMA as the store saw it.
struct KernelStore {
  uint64_t ts = 0;
  uint64_t start = 0, end = 0;
  uint64_t key = 0;
  vmat_vma_info info{};
};
KernelStore kernel_store_from(const vmat_vma_kernel_event& e);
// A store a syscall record carried (VMAT_EV_SYSCALL_STORES), made before `ts`.
KernelStore kernel_store_from(const vmat_vma_store& s, uint64_t ts);

struct KernelAfter {
  std::vector<Vma> vmas;  // in address order
  // Ranges where the kernel's result and the model's disagree (a VMA the
  // model does not hold with the same bounds): 0 when they agree.
  int disagreements = 0;
};

// `before`: the model's VMAs over the touched range before the operation.
// `stores`: the kernel's stores, in order. `cleared`: ranges the operation
// unmapped whose clearing the hook does not report (maple_tree:ma_write on
// 6.18 misses munmap's), applied after the stores. `model_after`: the
// layout after the operation, for the attributes a store cannot carry
// (vm_flags set after the store by mprotect_fixup(), the path) and the ids.
KernelAfter kernel_after(const std::vector<Vma>& before, const std::vector<KernelStore>& stores,
                         const std::vector<std::pair<uint64_t, uint64_t>>& cleared, const Layout& model_after);
// The same into `out` (what it held replaced, its capacity kept): for a
// caller that reuses one per record.
void kernel_after(const std::vector<Vma>& before, const std::vector<KernelStore>& stores,
                  const std::vector<std::pair<uint64_t, uint64_t>>& cleared, const Layout& model_after,
                  KernelAfter& out);

}  // namespace vmatrace
