#include "core/vm_flags.h"

#include <array>
#include <cstdio>
#include <stdexcept>

namespace vmatrace {
namespace {

struct FlagInfo {
  uint64_t bit;
  const char* name;
  const char* mnemonic;  // as printed by show_smap_vma_flags() on x86_64, "" if never printed
};

// Ascending bit order, which is also the order smaps prints mnemonics in.
constexpr std::array kFlags = {
    FlagInfo{VM_READ, "VM_READ", "rd"},
    FlagInfo{VM_WRITE, "VM_WRITE", "wr"},
    FlagInfo{VM_EXEC, "VM_EXEC", "ex"},
    FlagInfo{VM_SHARED, "VM_SHARED", "sh"},
    FlagInfo{VM_MAYREAD, "VM_MAYREAD", "mr"},
    FlagInfo{VM_MAYWRITE, "VM_MAYWRITE", "mw"},
    FlagInfo{VM_MAYEXEC, "VM_MAYEXEC", "me"},
    FlagInfo{VM_MAYSHARE, "VM_MAYSHARE", "ms"},
    FlagInfo{VM_GROWSDOWN, "VM_GROWSDOWN", "gd"},
    FlagInfo{VM_UFFD_MISSING, "VM_UFFD_MISSING", "um"},
    FlagInfo{VM_PFNMAP, "VM_PFNMAP", "pf"},
    FlagInfo{VM_MAYBE_GUARD, "VM_MAYBE_GUARD", ""},
    FlagInfo{VM_UFFD_WP, "VM_UFFD_WP", "uw"},
    FlagInfo{VM_LOCKED, "VM_LOCKED", "lo"},
    FlagInfo{VM_IO, "VM_IO", "io"},
    FlagInfo{VM_SEQ_READ, "VM_SEQ_READ", "sr"},
    FlagInfo{VM_RAND_READ, "VM_RAND_READ", "rr"},
    FlagInfo{VM_DONTCOPY, "VM_DONTCOPY", "dc"},
    FlagInfo{VM_DONTEXPAND, "VM_DONTEXPAND", "de"},
    FlagInfo{VM_LOCKONFAULT, "VM_LOCKONFAULT", "lf"},
    FlagInfo{VM_ACCOUNT, "VM_ACCOUNT", "ac"},
    FlagInfo{VM_NORESERVE, "VM_NORESERVE", "nr"},
    FlagInfo{VM_HUGETLB, "VM_HUGETLB", "ht"},
    FlagInfo{VM_SYNC, "VM_SYNC", "sf"},
    FlagInfo{VM_ARCH_1, "VM_ARCH_1", "ar"},
    FlagInfo{VM_WIPEONFORK, "VM_WIPEONFORK", "wf"},
    FlagInfo{VM_DONTDUMP, "VM_DONTDUMP", "dd"},
    FlagInfo{VM_SOFTDIRTY, "VM_SOFTDIRTY", "sd"},
    FlagInfo{VM_MIXEDMAP, "VM_MIXEDMAP", "mm"},
    FlagInfo{VM_HUGEPAGE, "VM_HUGEPAGE", "hg"},
    FlagInfo{VM_NOHUGEPAGE, "VM_NOHUGEPAGE", "nh"},
    FlagInfo{VM_MERGEABLE, "VM_MERGEABLE", "mg"},
    // Protection key bits are shown on smaps' "ProtectionKey:" line instead.
    FlagInfo{VM_PKEY_BIT0, "VM_PKEY_BIT0", ""},
    FlagInfo{VM_PKEY_BIT1, "VM_PKEY_BIT1", ""},
    FlagInfo{VM_PKEY_BIT2, "VM_PKEY_BIT2", ""},
    FlagInfo{VM_PKEY_BIT3, "VM_PKEY_BIT3", ""},
    FlagInfo{VM_SHADOW_STACK, "VM_SHADOW_STACK", "ss"},
    FlagInfo{VM_ALLOW_ANY_UNCACHED, "VM_ALLOW_ANY_UNCACHED", ""},
    FlagInfo{VM_DROPPABLE, "VM_DROPPABLE", "dp"},
    FlagInfo{VM_UFFD_MINOR, "VM_UFFD_MINOR", "ui"},
    FlagInfo{VM_SEALED, "VM_SEALED", "sl"},
};

// Mnemonics other architectures print for bits that x86 names differently;
// accepted when parsing so that foreign smaps text still seeds.
struct ForeignMnemonic {
  const char* mnemonic;
  uint64_t bit;
};
constexpr std::array kForeign = {
    ForeignMnemonic{"bt", VM_ARCH_1},   // arm64 VM_ARM64_BTI
    ForeignMnemonic{"mt", 1ULL << 36},  // arm64 VM_MTE (VM_HIGH_ARCH_4)
};

}  // namespace

std::string decode_vm_flags(uint64_t flags) {
  if (flags == 0) return "VM_NONE";
  std::string out;
  uint64_t rest = flags;
  for (const auto& f : kFlags) {
    if (flags & f.bit) {
      if (!out.empty()) out += '|';
      out += f.name;
      rest &= ~f.bit;
    }
  }
  if (rest) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(rest));
    if (!out.empty()) out += '|';
    out += buf;
  }
  return out;
}

std::optional<uint64_t> vm_flag_from_name(std::string_view name) {
  if (name.starts_with("VM_")) name.remove_prefix(3);
  if (name == "NONE") return VM_NONE;
  if (name == "PAT") return VM_PAT;
  for (const auto& f : kFlags) {
    if (std::string_view(f.name).substr(3) == name) return f.bit;
  }
  return std::nullopt;
}

std::optional<uint64_t> vm_flag_from_mnemonic(std::string_view mnemonic) {
  if (mnemonic.empty()) return std::nullopt;
  for (const auto& f : kFlags) {
    if (mnemonic == f.mnemonic) return f.bit;
  }
  for (const auto& f : kForeign) {
    if (mnemonic == f.mnemonic) return f.bit;
  }
  return std::nullopt;
}

std::string_view vm_flag_mnemonic(uint64_t single_bit) {
  for (const auto& f : kFlags) {
    if (f.bit == single_bit) return f.mnemonic;
  }
  return {};
}

uint64_t parse_smaps_vmflags(std::string_view text, std::vector<std::string>* unknown) {
  uint64_t flags = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n')) ++pos;
    size_t end = pos;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t' && text[end] != '\n') ++end;
    if (end > pos) {
      std::string_view word = text.substr(pos, end - pos);
      if (auto bit = vm_flag_from_mnemonic(word)) {
        flags |= *bit;
      } else if (unknown) {
        unknown->emplace_back(word);
      }
    }
    pos = end;
  }
  return flags;
}

std::string format_smaps_vmflags(uint64_t flags) {
  std::string out;
  for (const auto& f : kFlags) {
    if ((flags & f.bit) && f.mnemonic[0]) {
      out += f.mnemonic;
      out += ' ';
    }
  }
  return out;
}

char* put_maps_perms(char* p, uint64_t flags) {
  p[0] = (flags & VM_READ) ? 'r' : '-';
  p[1] = (flags & VM_WRITE) ? 'w' : '-';
  p[2] = (flags & VM_EXEC) ? 'x' : '-';
  p[3] = (flags & VM_MAYSHARE) ? 's' : 'p';
  return p + 4;
}

std::string format_maps_perms(uint64_t flags) {
  char p[4];
  return std::string(p, put_maps_perms(p, flags));
}

uint64_t vm_flags_from_prot(uint64_t prot) {
  uint64_t f = 0;
  if (prot & abi::kProtRead) f |= VM_READ;
  if (prot & abi::kProtWrite) f |= VM_WRITE;
  if (prot & abi::kProtExec) f |= VM_EXEC;
  return f;
}

uint64_t mmap_vm_flags(const MmapFlagsInput& in) {
  // do_mmap(): calc_vm_prot_bits() | calc_vm_flag_bits() | def_flags | VM_MAY*.
  uint64_t f = vm_flags_from_prot(in.prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (in.map_flags & abi::kMapGrowsDown) f |= VM_GROWSDOWN;
  if (in.map_flags & abi::kMapLocked) f |= VM_LOCKED;
  const uint64_t type = in.map_flags & abi::kMapType;
  if ((in.map_flags & abi::kMapSync) && type == abi::kMapSharedValidate) f |= VM_SYNC;
  if (in.map_flags & abi::kMapStack) f |= VM_NOHUGEPAGE;  // 6.7+; 6.1 ignores MAP_STACK
  const bool shared = type == abi::kMapShared || type == abi::kMapSharedValidate;
  if (shared) {
    f |= VM_SHARED | VM_MAYSHARE;
    if (in.file && !in.file_writable) f &= ~(VM_MAYWRITE | VM_SHARED);
  }
  if (type == abi::kMapDroppable) {
    // Droppable pages are neither reserved, forked nor dumped.
    f |= VM_DROPPABLE | VM_WIPEONFORK | VM_DONTDUMP | VM_NORESERVE;
  }
  if (in.file && in.file_noexec) f &= ~VM_MAYEXEC;
  if (in.map_flags & abi::kMapNoReserve) f |= VM_NORESERVE;
  if (in.hugetlb) {
    f |= VM_HUGETLB | VM_DONTEXPAND;
  } else if ((f & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE) {
    // mmap_region(): accountable_mapping() charges private writable memory.
    f |= VM_ACCOUNT;
  }
  return f | in.extra;
}

}  // namespace vmatrace
