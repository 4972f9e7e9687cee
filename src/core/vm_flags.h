#pragma once

// Kernel vm_flags bits (x86_64), the PROT_*/MAP_*/MREMAP_*/MADV_* syscall ABI
// values the model needs, and the /proc/PID/smaps "VmFlags:" mnemonics.
//
// Values come from include/linux/mm.h (Linux 6.18; the enum vma_flag_t
// rewrite of 6.19 keeps the same bit numbers) and the mnemonics from
// fs/proc/task_mmu.c show_smap_vma_flags(). We deliberately do not include
// <linux/mman.h> or any kernel header: this library must build anywhere.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmatrace {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

// ---- vm_flags (include/linux/mm.h) ----------------------------------------
inline constexpr uint64_t VM_NONE = 0;
inline constexpr uint64_t VM_READ = 0x00000001;
inline constexpr uint64_t VM_WRITE = 0x00000002;
inline constexpr uint64_t VM_EXEC = 0x00000004;
inline constexpr uint64_t VM_SHARED = 0x00000008;
inline constexpr uint64_t VM_MAYREAD = 0x00000010;
inline constexpr uint64_t VM_MAYWRITE = 0x00000020;
inline constexpr uint64_t VM_MAYEXEC = 0x00000040;
inline constexpr uint64_t VM_MAYSHARE = 0x00000080;
inline constexpr uint64_t VM_GROWSDOWN = 0x00000100;
inline constexpr uint64_t VM_UFFD_MISSING = 0x00000200;  // CONFIG_MMU (nommu: VM_MAYOVERLAY)
inline constexpr uint64_t VM_PFNMAP = 0x00000400;
inline constexpr uint64_t VM_MAYBE_GUARD = 0x00000800;  // newer than 6.18 (guard regions); was VM_DENYWRITE before 5.15
inline constexpr uint64_t VM_UFFD_WP = 0x00001000;
inline constexpr uint64_t VM_LOCKED = 0x00002000;
inline constexpr uint64_t VM_IO = 0x00004000;
inline constexpr uint64_t VM_SEQ_READ = 0x00008000;
inline constexpr uint64_t VM_RAND_READ = 0x00010000;
inline constexpr uint64_t VM_DONTCOPY = 0x00020000;
inline constexpr uint64_t VM_DONTEXPAND = 0x00040000;
inline constexpr uint64_t VM_LOCKONFAULT = 0x00080000;
inline constexpr uint64_t VM_ACCOUNT = 0x00100000;
inline constexpr uint64_t VM_NORESERVE = 0x00200000;
inline constexpr uint64_t VM_HUGETLB = 0x00400000;
inline constexpr uint64_t VM_SYNC = 0x00800000;
inline constexpr uint64_t VM_ARCH_1 = 0x01000000;  // x86: VM_PAT
inline constexpr uint64_t VM_WIPEONFORK = 0x02000000;
inline constexpr uint64_t VM_DONTDUMP = 0x04000000;
inline constexpr uint64_t VM_SOFTDIRTY = 0x08000000;  // 0 in kernels without CONFIG_MEM_SOFT_DIRTY
inline constexpr uint64_t VM_MIXEDMAP = 0x10000000;
inline constexpr uint64_t VM_HUGEPAGE = 0x20000000;
inline constexpr uint64_t VM_NOHUGEPAGE = 0x40000000;
inline constexpr uint64_t VM_MERGEABLE = 0x80000000;
// 64-bit only bits. x86 uses VM_HIGH_ARCH_0..3 for protection keys and
// VM_HIGH_ARCH_5 for the user shadow stack.
inline constexpr uint64_t VM_PKEY_BIT0 = 1ULL << 32;
inline constexpr uint64_t VM_PKEY_BIT1 = 1ULL << 33;
inline constexpr uint64_t VM_PKEY_BIT2 = 1ULL << 34;
inline constexpr uint64_t VM_PKEY_BIT3 = 1ULL << 35;
inline constexpr uint64_t VM_SHADOW_STACK = 1ULL << 37;
inline constexpr uint64_t VM_ALLOW_ANY_UNCACHED = 1ULL << 39;
inline constexpr uint64_t VM_DROPPABLE = 1ULL << 40;  // 6.11+
inline constexpr uint64_t VM_UFFD_MINOR = 1ULL << 41;
inline constexpr uint64_t VM_SEALED = 1ULL << 42;  // 6.10+ (bit 63 before 6.16)

inline constexpr uint64_t VM_PAT = VM_ARCH_1;
inline constexpr uint64_t VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
inline constexpr uint64_t VM_PKEY_MASK = VM_PKEY_BIT0 | VM_PKEY_BIT1 | VM_PKEY_BIT2 | VM_PKEY_BIT3;
// mm.h: "Special vmas that are non-mergable, non-mlock()able."
inline constexpr uint64_t VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
// mm/vma.h: flags that do not prevent a merge (6.18: only VM_SOFTDIRTY).
inline constexpr uint64_t VM_IGNORE_MERGE = VM_SOFTDIRTY;
inline constexpr uint64_t VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;
inline constexpr uint64_t VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR;
// kernel/fork.c mm_init(): the only def_flags a new mm inherits (fork, exec).
inline constexpr uint64_t VM_INIT_DEF_MASK = VM_NOHUGEPAGE;
// x86 VM_DATA_DEFAULT_FLAGS without READ_IMPLIES_EXEC (brk heap, do_brk_flags()).
inline constexpr uint64_t VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

// ---- syscall ABI (uapi asm-generic/mman-common.h, linux/mman.h) ----------
// In a nested namespace with kCamel names so that they never clash with the
// PROT_*/MAP_* macros of <sys/mman.h> in files that include both.
namespace abi {
inline constexpr uint64_t kProtRead = 0x1;
inline constexpr uint64_t kProtWrite = 0x2;
inline constexpr uint64_t kProtExec = 0x4;
inline constexpr uint64_t kProtGrowsDown = 0x01000000;
inline constexpr uint64_t kProtGrowsUp = 0x02000000;

inline constexpr uint64_t kMapShared = 0x01;
inline constexpr uint64_t kMapPrivate = 0x02;
inline constexpr uint64_t kMapSharedValidate = 0x03;
inline constexpr uint64_t kMapDroppable = 0x08;
inline constexpr uint64_t kMapType = 0x0f;
inline constexpr uint64_t kMapFixed = 0x10;
inline constexpr uint64_t kMapAnonymous = 0x20;
inline constexpr uint64_t kMapGrowsDown = 0x0100;
inline constexpr uint64_t kMapLocked = 0x2000;
inline constexpr uint64_t kMapNoReserve = 0x4000;
inline constexpr uint64_t kMapStack = 0x20000;
inline constexpr uint64_t kMapHugeTlb = 0x40000;
inline constexpr uint64_t kMapSync = 0x80000;

inline constexpr uint64_t kMremapMayMove = 1;
inline constexpr uint64_t kMremapFixed = 2;
inline constexpr uint64_t kMremapDontUnmap = 4;

inline constexpr int kMadvNormal = 0;
inline constexpr int kMadvRandom = 1;
inline constexpr int kMadvSequential = 2;
inline constexpr int kMadvWillNeed = 3;
inline constexpr int kMadvDontNeed = 4;
inline constexpr int kMadvFree = 8;
inline constexpr int kMadvRemove = 9;
inline constexpr int kMadvDontFork = 10;
inline constexpr int kMadvDoFork = 11;
inline constexpr int kMadvMergeable = 12;
inline constexpr int kMadvUnmergeable = 13;
inline constexpr int kMadvHugePage = 14;
inline constexpr int kMadvNoHugePage = 15;
inline constexpr int kMadvDontDump = 16;
inline constexpr int kMadvDoDump = 17;
inline constexpr int kMadvWipeOnFork = 18;
inline constexpr int kMadvKeepOnFork = 19;

inline constexpr uint64_t kMlockOnFault = 1;  // mlock2()
inline constexpr uint64_t kMclCurrent = 1;    // mlockall()
inline constexpr uint64_t kMclFuture = 2;
inline constexpr uint64_t kMclOnFault = 4;
}  // namespace abi

// ---- helpers ----------------------------------------------------------------

// Name of every set bit, "VM_READ|VM_WRITE|..."; unknown bits as hex
// ("0x100000000000"); "VM_NONE" for 0.
std::string decode_vm_flags(uint64_t flags);

// The flag for one VM_* name ("VM_READ" or "READ"), or nullopt.
std::optional<uint64_t> vm_flag_from_name(std::string_view name);

// smaps "VmFlags:" mnemonic <-> bit (show_smap_vma_flags(), x86_64 build).
// Mnemonics printed for several arches ("bt", "mt") map to the bit they use
// there only when it does not collide with an x86 meaning; unknown -> nullopt.
std::optional<uint64_t> vm_flag_from_mnemonic(std::string_view mnemonic);
std::string_view vm_flag_mnemonic(uint64_t single_bit);  // "" if none

// Parse the value of a "VmFlags:" line ("rd wr mr mw me ac "). Mnemonics
// this table does not know (a newer kernel) are skipped and appended to
// *unknown when given, so that seeding from a newer kernel still works.
uint64_t parse_smaps_vmflags(std::string_view text, std::vector<std::string>* unknown = nullptr);
// Format flags as the kernel does in smaps ("rd wr mr mw me ac ", trailing
// space included, bits in ascending order, bits without mnemonic skipped).
std::string format_smaps_vmflags(uint64_t flags);
// The permissions column of /proc/PID/maps, "rw-p": r/w/x from
// VM_READ/WRITE/EXEC, 's' if VM_MAYSHARE else 'p'.
std::string format_maps_perms(uint64_t flags);
// The same four characters written at p (no allocation): the end.
char* put_maps_perms(char* p, uint64_t flags);

// calc_vm_prot_bits(): PROT_READ/WRITE/EXEC -> VM_READ/WRITE/EXEC.
uint64_t vm_flags_from_prot(uint64_t prot);

// vm_flags a successful mmap() gives the new VMA (do_mmap() + mmap_region()
// for the common cases): calc_vm_prot_bits | calc_vm_flag_bits (MAP_GROWSDOWN,
// MAP_LOCKED, MAP_SYNC, MAP_STACK -> VM_NOHUGEPAGE since 6.7) | VM_MAY*,
// MAP_DROPPABLE -> VM_DROPPABLE|VM_WIPEONFORK|VM_DONTDUMP|VM_NORESERVE,
// hugetlb -> VM_HUGETLB|VM_DONTEXPAND (hugetlbfs_file_mmap),
// VM_SHARED|VM_MAYSHARE for shared mappings (VM_SHARED/VM_MAYWRITE dropped
// when a shared file was not opened for writing), VM_ACCOUNT per
// accountable_mapping(), VM_NORESERVE for MAP_NORESERVE (assumes
// overcommit_memory != 2), plus `extra` (e.g. VM_SOFTDIRTY when the kernel
// has CONFIG_MEM_SOFT_DIRTY, mm->def_flags). Driver mmap hooks that add
// VM_IO/VM_PFNMAP/... cannot be predicted; pass them in `extra`.
struct MmapFlagsInput {
  uint64_t prot = 0;
  uint64_t map_flags = 0;
  bool file = false;          // file-backed (not MAP_ANONYMOUS)
  bool file_writable = true;  // fd opened with FMODE_WRITE
  bool file_noexec = false;   // file on a noexec mount (VM_MAYEXEC dropped)
  bool hugetlb = false;       // hugetlbfs file or MAP_HUGETLB
  uint64_t extra = 0;
};
uint64_t mmap_vm_flags(const MmapFlagsInput& in);

}  // namespace vmatrace
