#pragma once
// The GNU build-id of an ELF file: what offline symbolization needs to find
// the exact binary (or its debug info) a recording mapped.

#include <optional>
#include <string>

namespace vmatrace {

// Hex build-id of the ELF file at path, or nullopt (not ELF, no note,
// unreadable). Uses elfutils' libelf.
std::optional<std::string> read_build_id(const std::string& path);

}  // namespace vmatrace
