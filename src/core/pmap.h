#pragma once
// A pmap-style view of one Layout: each VMA with its size, permissions, what
// it is (program text, heap, shared library data, ...), its decoded kernel
// flags and name, then totals by kind. Pure: the Layout alone decides.

#include <cstdint>
#include <string>

#include "core/layout.h"

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

// The whole view, one line per VMA and a totals block; sizes in KiB.
std::string pmap_text(const Layout& l, const std::string& program);

}  // namespace vmatrace
