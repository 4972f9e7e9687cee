#include "record/checksum.h"

#include <array>

namespace vmatrace {
namespace {

constexpr std::uint32_t kPoly = 0x82f63b78;  // reflected Castagnoli polynomial

// table[k][b]: CRC of byte b followed by k zero bytes, which lets the main
// loop fold 8 input bytes per step instead of 1.
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][b] = c;
  }
  for (std::uint32_t b = 0; b < 256; ++b)
    for (std::size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}

constexpr auto kTables = make_tables();

inline std::uint32_t byte_at(const std::byte* p, std::size_t i) { return std::to_integer<std::uint32_t>(p[i]); }

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes the same CRC (Castagnoli), 8 bytes
// per instruction: used when the CPU has it (every x86-64 CPU since 2008).
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const std::byte* p, std::size_t n,
                                                             std::uint32_t crc) noexcept {
  std::uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t v;
    __builtin_memcpy(&v, p, 8);  // little-endian, as the table loop reads them
    c = __builtin_ia32_crc32di(c, v);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; p++, n--) c32 = __builtin_ia32_crc32qi(c32, std::to_integer<unsigned char>(*p));
  return ~c32;
}

bool have_sse42() noexcept {
  static const bool have = [] {
    __builtin_cpu_init();  // may run before the constructor that does it
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#endif

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc) noexcept {
  const std::byte* p = data.data();
  std::size_t n = data.size();
#if defined(__x86_64__)
  if (have_sse42()) return crc32c_sse42(p, n, crc);
#endif
  crc = ~crc;
  while (n >= 8) {
    // Assembled byte by byte: endian-neutral and free of alignment UB.
    std::uint32_t lo = crc ^ (byte_at(p, 0) | byte_at(p, 1) << 8 | byte_at(p, 2) << 16 | byte_at(p, 3) << 24);
    crc = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^
          kTables[3][byte_at(p, 4)] ^ kTables[2][byte_at(p, 5)] ^ kTables[1][byte_at(p, 6)] ^ kTables[0][byte_at(p, 7)];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kTables[0][(crc ^ std::to_integer<std::uint32_t>(*p++)) & 0xff];
  return ~crc;
}

}  // namespace vmatrace
