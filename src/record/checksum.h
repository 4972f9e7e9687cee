// CRC32C (Castagnoli), as used by iSCSI, ext4 and btrfs: better error
// detection than CRC32 for the same cost. SSE4.2's crc32 instruction when
// the CPU has it, else software slice-by-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vmatrace {

// Continues a running CRC: crc32c(b, crc32c(a)) == crc32c(a ++ b).
// Start with crc = 0.
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

}  // namespace vmatrace
