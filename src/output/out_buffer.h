#pragma once
// The encoders' output: one growable byte buffer, reused for every event
// (live and in replay), written out in large blocks by its owner. Each
// append makes room once and writes through a pointer: no snprintf, no
// temporaries, no std::string bookkeeping per character.

#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace vmatrace {

class OutBuffer {
 public:
  OutBuffer() = default;
  OutBuffer(const OutBuffer&) = delete;
  OutBuffer& operator=(const OutBuffer&) = delete;

  std::string_view view() const { return {data_.get(), size_}; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }

  // At least n bytes free at the end: where they start. Write, then commit().
  char* room(size_t n) {
    if (cap_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  // The bytes up to `end` (a pointer from room()) are written.
  void commit(const char* end) { size_ = static_cast<size_t>(end - data_.get()); }

  OutBuffer& operator<<(std::string_view s) {
    if (!s.empty()) {
      std::memcpy(room(s.size()), s.data(), s.size());
      size_ += s.size();
    }
    return *this;
  }
  OutBuffer& operator<<(char c) {
    *room(1) = c;
    size_++;
    return *this;
  }
  OutBuffer& dec(uint64_t v) {
    commit(put_dec(room(kNumber), v));
    return *this;
  }
  OutBuffer& sdec(int64_t v) {
    char* p = room(kNumber);
    commit(std::to_chars(p, p + kNumber, v).ptr);
    return *this;
  }
  // Zero-padded decimal of exactly `width` digits (v must fit; width <= 20).
  OutBuffer& dec0(uint64_t v, int width) {
    char* p = room(kNumber);
    for (int i = width - 1; i >= 0; i--, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    commit(p + width);
    return *this;
  }
  // Space-padded on the left to `width` (<= 20).
  OutBuffer& decw(uint64_t v, int width) {
    char* p = room(2 * kNumber);
    char digits[kNumber];
    const int n = static_cast<int>(put_dec(digits, v) - digits);
    for (int i = n; i < width; i++) *p++ = ' ';
    std::memcpy(p, digits, static_cast<size_t>(n));
    commit(p + n);
    return *this;
  }
  OutBuffer& hex(uint64_t v) {  // "0x1f"
    commit(put_hex(room(kNumber), v));
    return *this;
  }
  OutBuffer& xdigits(uint64_t v) {  // "1f"
    commit(put_xdigits(room(kNumber), v));
    return *this;
  }
  OutBuffer& xdigits0(uint64_t v, int width) {  // zero-padded hex (width <= 16)
    char* p = room(2 * kNumber);
    for (int n = hex_digits(v); n < width; n++) *p++ = '0';
    commit(put_xdigits(p, v));
    return *this;
  }

  // The writers behind these, for callers that write a whole piece after
  // one room(): each needs at most kNumber bytes and returns the new end.
  static constexpr size_t kNumber = 24;
  static char* put_dec(char* p, uint64_t v) { return std::to_chars(p, p + kNumber, v).ptr; }
  static int hex_digits(uint64_t v) { return v ? (67 - std::countl_zero(v)) / 4 : 1; }
  // Writes 16 bytes (the digits, then scratch the caller's room covers).
  static char* put_xdigits(char* p, uint64_t v) {
    const int n = hex_digits(v);
    v <<= 4 * (16 - n);  // the digits to show at the top
    const uint64_t hi = hex8(static_cast<uint32_t>(v >> 32)), lo = hex8(static_cast<uint32_t>(v));
    std::memcpy(p, &hi, 8);
    std::memcpy(p + 8, &lo, 8);
    return p + n;
  }
  static char* put_hex(char* p, uint64_t v) {
    *p++ = '0';
    *p++ = 'x';
    return put_xdigits(p, v);
  }
  static char* put(char* p, std::string_view s) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    return p + s.size();
  }

 private:
  void grow(size_t n);
  // The 8 hex digits of x as they lie in memory, all at once: each nibble
  // spread to a byte, then '0'-'9'/'a'-'f' added per byte.
  static uint64_t hex8(uint32_t x) {
    uint64_t v = x;
    v = (v | (v << 16)) & 0x0000ffff0000ffffull;
    v = (v | (v << 8)) & 0x00ff00ff00ff00ffull;
    v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0full;  // the first digit in the top byte
    const uint64_t letter = ((v + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
    v += 0x3030303030303030ull + letter * ('a' - '0' - 10);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0, cap_ = 0;
};

}  // namespace vmatrace
