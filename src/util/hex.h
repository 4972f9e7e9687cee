#pragma once
// Lower-case hex of raw bytes (build ids, as libdw's directories and
// `readelf -n` spell them).

#include <cstddef>
#include <string>

namespace vmatrace {

inline std::string hex_bytes(const void* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* b = static_cast<const unsigned char*>(bytes);
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; i++) {
    s += kDigits[b[i] >> 4];
    s += kDigits[b[i] & 15];
  }
  return s;
}

}  // namespace vmatrace
