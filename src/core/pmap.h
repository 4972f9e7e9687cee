#pragma once
// A pmap-style view of one Layout: each VMA with its size, permissions, what
// it is (program text, heap, shared library data, ...), its decoded kernel
// flags and name, then totals by kind. Pure: the Layout alone decides.

#include <cstdint>
#include <string>

#include "core/layout.h"
#include "core/rss_model.h"

namespace vmatrace {

enum class VmaKind {
  kProgramText,
  kProgramData,
  kProgramBss,
  kHeap,
  kStack,
  kLibCode,
  kLibData,
  kAnon,
  kFile,
  kShm,
  kSpecial
};
const char* vma_kind_name(VmaKind k);  // "program text", "heap", "shared-library code", ...

// What `v` is. `name` is maps_name(l, v); `program` is the executable's path
// ("" = unknown: then the lowest file mapping is taken as the program);
// `prev` is the VMA right below v, or null (an anonymous VMA directly after
// the program's last file mapping is its bss, as load_elf_binary() -> set_brk()
// / the loader's zero-fill maps it).
VmaKind classify_vma(const Vma& v, const std::string& name, const std::string& program, const Vma* prev,
                     const std::string& prev_name);

// The whole view, one line per VMA and a totals block; sizes in KiB. With
// `rss`, Rss, Anon and Swap columns as pmap -X shows them (and totals).
std::string pmap_text(const Layout& l, const std::string& program, const RssMap* rss = nullptr);

// The residency of one process as one JSON object: pid, comm, ts, totals
// (rss, anon, swap, bytes) and a `vmas` array of {start, end (hex strings),
// size, perms, kind, name, rss, anon, swap}; kernel_rss: the kernel's VmRSS
// at the last scan (0: none); kernel: the kernel's counters (rss_stat),
// written as a `kernel` object {rss, anon, file, shmem, swap} when known.
std::string pmap_rss_json(uint32_t pid, const std::string& comm, uint64_t ts, const Layout& l,
                          const std::string& program, const RssMap& rss, uint64_t kernel_rss,
                          const std::optional<KernelRss>& kernel = std::nullopt);

// Program path as pmap_text() guesses it when none is known.
std::string pmap_program(const Layout& l, const std::string& program);

}  // namespace vmatrace
