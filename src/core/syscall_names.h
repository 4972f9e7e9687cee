#pragma once
// Names of the traced syscalls and of their arguments' and results' values:
// PROT_*, MAP_*, MREMAP_*, MADV_*, MLOCK_*, MCL_*, SHM_*, errno names.
// (Formatting of numbers and strings is util/text.h.)

#include <cstdint>
#include <string>
#include <string_view>

#include "util/text.h"  // hex, human_size, escaping: most users of the names need them too

namespace vmatrace {

// "mmap", "munmap", ... for an enum vmat_sys value; "syscall" if unknown.
const char* syscall_name(uint32_t sys);
std::string prot_names(uint64_t prot);            // "PROT_READ|PROT_WRITE", "PROT_NONE"
std::string mmap_flag_names(uint64_t flags);      // "MAP_PRIVATE|MAP_ANONYMOUS|0x..."
std::string mremap_flag_names(uint64_t flags);    // "MREMAP_MAYMOVE", "0"
std::string madvise_name(uint64_t advice);        // "MADV_DONTNEED" or the number
std::string mlock2_flag_names(uint64_t flags);    // "MLOCK_ONFAULT", "0"
std::string mlockall_flag_names(uint64_t flags);  // "MCL_CURRENT|MCL_FUTURE", "0"
std::string shmat_flag_names(uint64_t flags);     // "SHM_RDONLY|SHM_RND", "0"
std::string errno_name(int err);                  // "ENOMEM" or "E<n>"
const char* fault_access(uint32_t error_code);    // "read", "write", "exec"

}  // namespace vmatrace
