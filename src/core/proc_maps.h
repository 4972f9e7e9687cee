#pragma once

// /proc/PID/maps and /proc/PID/smaps: parse the kernel's text into Vma lists,
// print a Vma exactly as fs/proc/task_mmu.c show_map_vma() does, and read a
// live process into a seeded Layout.

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/layout.h"

namespace vmatrace {

// dev_t as the kernel keeps it internally (MKDEV): major << 20 | minor.
inline constexpr uint32_t kernel_mkdev(uint32_t major, uint32_t minor) { return (major << 20) | (minor & 0xfffff); }
inline constexpr uint32_t kernel_major(uint32_t dev) { return dev >> 20; }
inline constexpr uint32_t kernel_minor(uint32_t dev) { return dev & 0xfffff; }

// seq_path(m, path, "\n"): a newline in a path is printed as "\012".
std::string escape_maps_path(std::string_view path);
std::string unescape_maps_path(std::string_view printed);

// One line of /proc/PID/maps, '\n' included: show_vma_header_prefix()
// ("%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "), then, when `name` is not
// empty, spaces up to column 72 (25 + 6 * sizeof(void *) - 1), one more
// space and the name. The offset column is vm_pgoff << PAGE_SHIFT for file
// VMAs and 0 for everything else.
std::string format_maps_line(const Vma& v, std::string_view name);

// The name column for `v` of `l`, in get_vma_name()'s order: the file
// (seq_path-escaped, " (deleted)" when unlinked; "[anon_shmem:NAME]" for a
// named shared anonymous one), the special mapping's name, "[heap]",
// "[stack]", "[anon:NAME]", else "".
std::string maps_name(const Layout& l, const Vma& v);

// All of `l` as /proc/PID/maps prints it.
std::string format_proc_maps(const Layout& l);

// Parse /proc/PID/maps. Flags can only be guessed from "rwxp/s" and the name
// (VM_MAY*, VM_SHARED, VM_ACCOUNT, VM_GROWSDOWN for [stack], the flags of
// [vdso]/[vvar]/[vsyscall] as x86_64 sets them); use smaps for exact flags.
// Anonymous VMAs get pgoff = start >> 12 (what the kernel gave them unless
// they were moved). "[heap]"/"[stack]" are not stored (derived at print
// time); `names`, when given, receives the printed name column per VMA.
// Throws std::runtime_error("maps line N: ...") on malformed text.
std::vector<Vma> parse_proc_maps(std::string_view text, std::vector<std::string>* names = nullptr);

// One maps line (no '\n' needed); nullopt if it is not a maps line.
std::optional<Vma> parse_maps_line(std::string_view line, std::string* name = nullptr);

// Parse /proc/PID/smaps: header lines as in maps, flags from "VmFlags:".
std::vector<Vma> parse_proc_smaps(std::string_view text, std::vector<std::string>* names = nullptr);

// The whole file at `path` (works for /proc files that report size 0).
// Throws std::runtime_error naming the path and errno text.
std::string read_text_file(const std::string& path);

// mm fields from /proc/PID/stat (proc(5) fields 28 startstack, 47 start_brk;
// the current brk is not exported anywhere, see read_proc_snapshot()).
struct ProcStat {
  uint64_t start_stack = 0;
  uint64_t start_data = 0, end_data = 0;  // fields 45, 46
  uint64_t start_brk = 0;                 // field 47
};
ProcStat parse_proc_stat(std::string_view text);

struct ProcSnapshot {
  std::vector<Vma> vmas;
  std::vector<std::string> names;  // printed name per VMA
  bool from_smaps = false;         // exact flags (else guessed from maps)
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
};
// Read /proc/PID/smaps (falling back to maps) and /proc/PID/stat. brk is
// taken as the end of the VMA(s) the kernel named [heap] (the page-aligned
// brk; the exact value is not exported), or start_brk without a heap.
ProcSnapshot read_proc_snapshot(pid_t pid);

// read_proc_snapshot() turned into a seeded Layout. Throws
// std::runtime_error with the pid and file on failure.
Layout read_proc_layout(pid_t pid);
Layout layout_from_snapshot(const ProcSnapshot& snap);

}  // namespace vmatrace
