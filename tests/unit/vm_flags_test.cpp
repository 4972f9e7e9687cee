#include <gtest/gtest.h>

#include "core/vm_flags.h"

namespace vmatrace {
namespace {

TEST(VmFlags, ValuesMatchIncludeLinuxMmH) {
  // include/linux/mm.h, 6.18 (bit numbers of enum vma_flag_t in 6.19).
  EXPECT_EQ(VM_READ, 0x1u);
  EXPECT_EQ(VM_WRITE, 0x2u);
  EXPECT_EQ(VM_EXEC, 0x4u);
  EXPECT_EQ(VM_SHARED, 0x8u);
  EXPECT_EQ(VM_MAYREAD, 0x10u);
  EXPECT_EQ(VM_MAYWRITE, 0x20u);
  EXPECT_EQ(VM_MAYEXEC, 0x40u);
  EXPECT_EQ(VM_MAYSHARE, 0x80u);
  EXPECT_EQ(VM_GROWSDOWN, 0x100u);
  EXPECT_EQ(VM_UFFD_MISSING, 0x200u);
  EXPECT_EQ(VM_PFNMAP, 0x400u);
  EXPECT_EQ(VM_UFFD_WP, 0x1000u);
  EXPECT_EQ(VM_LOCKED, 0x2000u);
  EXPECT_EQ(VM_IO, 0x4000u);
  EXPECT_EQ(VM_SEQ_READ, 0x8000u);
  EXPECT_EQ(VM_RAND_READ, 0x10000u);
  EXPECT_EQ(VM_DONTCOPY, 0x20000u);
  EXPECT_EQ(VM_DONTEXPAND, 0x40000u);
  EXPECT_EQ(VM_LOCKONFAULT, 0x80000u);
  EXPECT_EQ(VM_ACCOUNT, 0x100000u);
  EXPECT_EQ(VM_NORESERVE, 0x200000u);
  EXPECT_EQ(VM_HUGETLB, 0x400000u);
  EXPECT_EQ(VM_SYNC, 0x800000u);
  EXPECT_EQ(VM_ARCH_1, 0x1000000u);
  EXPECT_EQ(VM_WIPEONFORK, 0x2000000u);
  EXPECT_EQ(VM_DONTDUMP, 0x4000000u);
  EXPECT_EQ(VM_SOFTDIRTY, 0x8000000u);
  EXPECT_EQ(VM_MIXEDMAP, 0x10000000u);
  EXPECT_EQ(VM_HUGEPAGE, 0x20000000u);
  EXPECT_EQ(VM_NOHUGEPAGE, 0x40000000u);
  EXPECT_EQ(VM_MERGEABLE, 0x80000000u);
  EXPECT_EQ(VM_SHADOW_STACK, 1ULL << 37);
  EXPECT_EQ(VM_DROPPABLE, 1ULL << 40);
  EXPECT_EQ(VM_UFFD_MINOR, 1ULL << 41);
  EXPECT_EQ(VM_SEALED, 1ULL << 42);
  EXPECT_EQ(VM_SPECIAL, VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP);
}

TEST(VmFlags, Decode) {
  EXPECT_EQ(decode_vm_flags(0), "VM_NONE");
  EXPECT_EQ(decode_vm_flags(VM_READ | VM_WRITE | VM_MAYREAD), "VM_READ|VM_WRITE|VM_MAYREAD");
  EXPECT_EQ(decode_vm_flags(VM_MERGEABLE | VM_SEALED), "VM_MERGEABLE|VM_SEALED");
  EXPECT_EQ(decode_vm_flags(VM_READ | (1ULL << 50)), "VM_READ|0x4000000000000");
  for (int bit = 0; bit < 64; bit++) {
    const uint64_t f = 1ULL << bit;
    const std::string name = decode_vm_flags(f);
    if (name.starts_with("VM_")) {
      EXPECT_EQ(vm_flag_from_name(name), f) << name;
    }
  }
  EXPECT_EQ(vm_flag_from_name("ACCOUNT"), VM_ACCOUNT);
  EXPECT_EQ(vm_flag_from_name("VM_BOGUS"), std::nullopt);
}

TEST(VmFlags, SmapsMnemonicsFollowShowSmapVmaFlags) {
  const std::pair<const char*, uint64_t> table[] = {
      {"rd", VM_READ},         {"wr", VM_WRITE},        {"ex", VM_EXEC},       {"sh", VM_SHARED},
      {"mr", VM_MAYREAD},      {"mw", VM_MAYWRITE},     {"me", VM_MAYEXEC},    {"ms", VM_MAYSHARE},
      {"gd", VM_GROWSDOWN},    {"pf", VM_PFNMAP},       {"lo", VM_LOCKED},     {"io", VM_IO},
      {"sr", VM_SEQ_READ},     {"rr", VM_RAND_READ},    {"dc", VM_DONTCOPY},   {"de", VM_DONTEXPAND},
      {"lf", VM_LOCKONFAULT},  {"ac", VM_ACCOUNT},      {"nr", VM_NORESERVE},  {"ht", VM_HUGETLB},
      {"sf", VM_SYNC},         {"ar", VM_ARCH_1},       {"wf", VM_WIPEONFORK}, {"dd", VM_DONTDUMP},
      {"sd", VM_SOFTDIRTY},    {"mm", VM_MIXEDMAP},     {"hg", VM_HUGEPAGE},   {"nh", VM_NOHUGEPAGE},
      {"mg", VM_MERGEABLE},    {"um", VM_UFFD_MISSING}, {"uw", VM_UFFD_WP},    {"ui", VM_UFFD_MINOR},
      {"ss", VM_SHADOW_STACK}, {"dp", VM_DROPPABLE},    {"sl", VM_SEALED},
  };
  for (const auto& [m, bit] : table) {
    EXPECT_EQ(vm_flag_from_mnemonic(m), bit) << m;
    EXPECT_EQ(vm_flag_mnemonic(bit), m);
  }
  EXPECT_EQ(vm_flag_from_mnemonic("zz"), std::nullopt);
  EXPECT_EQ(vm_flag_from_mnemonic(""), std::nullopt);
  EXPECT_EQ(vm_flag_mnemonic(VM_PKEY_BIT0), "");  // shown as ProtectionKey:
}

TEST(VmFlags, ParseAndFormatVmFlagsLine) {
  // The [stack] line of a real 6.18 smaps.
  const uint64_t f = parse_smaps_vmflags(" rd wr mr mw me gd ac \n");
  EXPECT_EQ(f, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN | VM_ACCOUNT);
  EXPECT_EQ(format_smaps_vmflags(f), "rd wr mr mw me gd ac ");
  std::vector<std::string> unknown;
  EXPECT_EQ(parse_smaps_vmflags("rd xx ex", &unknown), VM_READ | VM_EXEC);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0], "xx");
  // Round trip of every bit with a mnemonic.
  for (int bit = 0; bit < 64; bit++) {
    const uint64_t b = 1ULL << bit;
    if (vm_flag_mnemonic(b).empty()) continue;
    EXPECT_EQ(parse_smaps_vmflags(format_smaps_vmflags(b)), b) << bit;
  }
}

TEST(VmFlags, MmapFlagsAsDoMmapComputesThem) {
  using namespace abi;
  const uint64_t may = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  // private anonymous rw: accounted
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapPrivate | kMapAnonymous}),
            VM_READ | VM_WRITE | may | VM_ACCOUNT);
  // PROT_NONE reservation, NORESERVE: not accounted
  EXPECT_EQ(mmap_vm_flags({.prot = 0, .map_flags = kMapPrivate | kMapAnonymous | kMapNoReserve}), may | VM_NORESERVE);
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapPrivate | kMapNoReserve}),
            VM_READ | VM_WRITE | may | VM_NORESERVE);
  // shared anonymous
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapShared | kMapAnonymous}),
            VM_READ | VM_WRITE | may | VM_SHARED | VM_MAYSHARE);
  // shared file opened read-only: no VM_SHARED, no VM_MAYWRITE (smaps "rd mr me ms")
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead, .map_flags = kMapShared, .file = true, .file_writable = false}),
            VM_READ | VM_MAYREAD | VM_MAYEXEC | VM_MAYSHARE);
  // private file text: rd ex mr mw me
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtExec, .map_flags = kMapPrivate, .file = true}),
            VM_READ | VM_EXEC | may);
  // private file data: accounted
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapPrivate, .file = true}),
            VM_READ | VM_WRITE | may | VM_ACCOUNT);
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite,
                           .map_flags = kMapPrivate | kMapAnonymous | kMapStack | kMapGrowsDown | kMapLocked}),
            VM_READ | VM_WRITE | may | VM_ACCOUNT | VM_NOHUGEPAGE | VM_GROWSDOWN | VM_LOCKED);
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapDroppable | kMapAnonymous}),
            VM_READ | VM_WRITE | may | VM_DROPPABLE | VM_WIPEONFORK | VM_DONTDUMP | VM_NORESERVE);
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead | kProtWrite, .map_flags = kMapPrivate | kMapAnonymous, .hugetlb = true}),
            VM_READ | VM_WRITE | may | VM_HUGETLB | VM_DONTEXPAND);
  EXPECT_EQ(mmap_vm_flags({.prot = kProtRead, .map_flags = kMapPrivate, .file = true, .file_noexec = true}),
            VM_READ | VM_MAYREAD | VM_MAYWRITE);
  EXPECT_EQ(vm_flags_from_prot(kProtRead | kProtExec | kProtGrowsDown), VM_READ | VM_EXEC);
}

}  // namespace
}  // namespace vmatrace
