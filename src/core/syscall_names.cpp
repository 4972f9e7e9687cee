#include "core/syscall_names.h"

#include "vmatrace/abi/events.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <utility>

namespace vmatrace {
namespace {

template <size_t N>
std::string flag_names(uint64_t v, const std::array<std::pair<uint64_t, const char*>, N>& names, const char* zero) {
  std::string out;
  for (const auto& [bit, name] : names) {
    if (bit && (v & bit) == bit) {
      if (!out.empty()) out += '|';
      out += name;
      v &= ~bit;
    }
  }
  if (v) {
    if (!out.empty()) out += '|';
    out += hex(v);
  }
  return out.empty() ? zero : out;
}

}  // namespace

const char* syscall_name(uint32_t sys) {
  switch (sys) {
#define VMAT_SYSCALL_NAME_CASE(name, NAME, ...) \
  case VMAT_SYS_##NAME:                         \
    return #name;
    VMAT_SYSCALLS(VMAT_SYSCALL_NAME_CASE)
#undef VMAT_SYSCALL_NAME_CASE
  }
  return "syscall";
}

std::string prot_names(uint64_t prot) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 6> names{{{0x1, "PROT_READ"},
                                                                          {0x2, "PROT_WRITE"},
                                                                          {0x4, "PROT_EXEC"},
                                                                          {0x8, "PROT_SEM"},
                                                                          {0x01000000, "PROT_GROWSDOWN"},
                                                                          {0x02000000, "PROT_GROWSUP"}}};
  return flag_names(prot, names, "PROT_NONE");
}

std::string mmap_flag_names(uint64_t flags) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 18> names{{{0x03, "MAP_SHARED_VALIDATE"},
                                                                           {0x01, "MAP_SHARED"},
                                                                           {0x02, "MAP_PRIVATE"},
                                                                           {0x10, "MAP_FIXED"},
                                                                           {0x20, "MAP_ANONYMOUS"},
                                                                           {0x40, "MAP_32BIT"},
                                                                           {0x100, "MAP_GROWSDOWN"},
                                                                           {0x800, "MAP_DENYWRITE"},
                                                                           {0x1000, "MAP_EXECUTABLE"},
                                                                           {0x2000, "MAP_LOCKED"},
                                                                           {0x4000, "MAP_NORESERVE"},
                                                                           {0x8000, "MAP_POPULATE"},
                                                                           {0x10000, "MAP_NONBLOCK"},
                                                                           {0x20000, "MAP_STACK"},
                                                                           {0x40000, "MAP_HUGETLB"},
                                                                           {0x80000, "MAP_SYNC"},
                                                                           {0x100000, "MAP_FIXED_NOREPLACE"},
                                                                           {0x4000000, "MAP_UNINITIALIZED"}}};
  return flag_names(flags, names, "0");
}

std::string mremap_flag_names(uint64_t flags) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 3> names{
      {{1, "MREMAP_MAYMOVE"}, {2, "MREMAP_FIXED"}, {4, "MREMAP_DONTUNMAP"}}};
  return flag_names(flags, names, "0");
}

std::string mlock2_flag_names(uint64_t flags) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 1> names{{{1, "MLOCK_ONFAULT"}}};
  return flag_names(flags, names, "0");
}

std::string mlockall_flag_names(uint64_t flags) {
  static constexpr std::array<std::pair<uint64_t, const char*>, 3> names{
      {{1, "MCL_CURRENT"}, {2, "MCL_FUTURE"}, {4, "MCL_ONFAULT"}}};
  return flag_names(flags, names, "0");
}

std::string shmat_flag_names(uint64_t flags) {
  // uapi linux/shm.h (octal there).
  static constexpr std::array<std::pair<uint64_t, const char*>, 4> names{
      {{010000, "SHM_RDONLY"}, {020000, "SHM_RND"}, {040000, "SHM_REMAP"}, {0100000, "SHM_EXEC"}}};
  return flag_names(flags, names, "0");
}

std::string madvise_name(uint64_t advice) {
  switch (advice) {
    case 0:
      return "MADV_NORMAL";
    case 1:
      return "MADV_RANDOM";
    case 2:
      return "MADV_SEQUENTIAL";
    case 3:
      return "MADV_WILLNEED";
    case 4:
      return "MADV_DONTNEED";
    case 8:
      return "MADV_FREE";
    case 9:
      return "MADV_REMOVE";
    case 10:
      return "MADV_DONTFORK";
    case 11:
      return "MADV_DOFORK";
    case 12:
      return "MADV_MERGEABLE";
    case 13:
      return "MADV_UNMERGEABLE";
    case 14:
      return "MADV_HUGEPAGE";
    case 15:
      return "MADV_NOHUGEPAGE";
    case 16:
      return "MADV_DONTDUMP";
    case 17:
      return "MADV_DODUMP";
    case 18:
      return "MADV_WIPEONFORK";
    case 19:
      return "MADV_KEEPONFORK";
    case 20:
      return "MADV_COLD";
    case 21:
      return "MADV_PAGEOUT";
    case 22:
      return "MADV_POPULATE_READ";
    case 23:
      return "MADV_POPULATE_WRITE";
    case 24:
      return "MADV_DONTNEED_LOCKED";
    case 25:
      return "MADV_COLLAPSE";
    case 100:
      return "MADV_HWPOISON";
    case 101:
      return "MADV_SOFT_OFFLINE";
    case 102:
      return "MADV_GUARD_INSTALL";
    case 103:
      return "MADV_GUARD_REMOVE";
  }
  return std::to_string(advice);
}

std::string errno_name(int err) {
  switch (err) {
    case 1:
      return "EPERM";
    case 2:
      return "ENOENT";
    case 4:
      return "EINTR";
    case 9:
      return "EBADF";
    case 11:
      return "EAGAIN";
    case 12:
      return "ENOMEM";
    case 13:
      return "EACCES";
    case 14:
      return "EFAULT";
    case 16:
      return "EBUSY";
    case 17:
      return "EEXIST";
    case 19:
      return "ENODEV";
    case 22:
      return "EINVAL";
    case 23:
      return "ENFILE";
    case 24:
      return "EMFILE";
    case 26:
      return "ETXTBSY";
    case 27:
      return "EFBIG";
    case 38:
      return "ENOSYS";
    case 75:
      return "EOVERFLOW";
    case 95:
      return "EOPNOTSUPP";
  }
  // Appended rather than `"E" + std::to_string(err)`: GCC 12 at -O3 warns
  // (-Wrestrict, a false positive in the inlined string insert).
  std::string name = "E";
  name += std::to_string(err);
  return name;
}

const char* fault_access(uint32_t error_code) {
  // X86_PF_WRITE = 2, X86_PF_INSTR = 16 (arch/x86/include/asm/trap_pf.h)
  if (error_code & 16) return "exec";
  if (error_code & 2) return "write";
  return "read";
}

}  // namespace vmatrace
