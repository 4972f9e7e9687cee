// CRC32C (Castagnoli), as used by iSCSI, ext4 and btrfs: better error
// detection than CRC32 for the same cost, and hardware-accelerated
// elsewhere should a later version want it. Software slice-by-8 here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vmatrace {

// Continues a running CRC: crc32c(b, crc32c(a)) == crc32c(a ++ b).
// Start with crc = 0.
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

}  // namespace vmatrace
