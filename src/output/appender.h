#pragma once
// Allocation-free formatting into a reused std::string: the printers run
// once per event, live and in replay, so they avoid snprintf and temporaries.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace vmatrace {

class Appender {
 public:
  explicit Appender(std::string& s) : s_(s) {}
  Appender& operator<<(std::string_view v) {
    s_.append(v);
    return *this;
  }
  Appender& operator<<(char c) {
    s_.push_back(c);
    return *this;
  }
  Appender& dec(uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof(b), v);
    s_.append(b, r.ptr);
    return *this;
  }
  Appender& sdec(int64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof(b), v);
    s_.append(b, r.ptr);
    return *this;
  }
  // Zero-padded decimal of exactly `width` digits (v must fit).
  Appender& dec0(uint64_t v, int width) {
    char b[24];
    for (int i = width - 1; i >= 0; i--, v /= 10) b[i] = static_cast<char>('0' + v % 10);
    s_.append(b, static_cast<size_t>(width));
    return *this;
  }
  // Space-padded on the left to `width`.
  Appender& decw(uint64_t v, int width) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof(b), v);
    for (int n = static_cast<int>(r.ptr - b); n < width; n++) s_.push_back(' ');
    s_.append(b, r.ptr);
    return *this;
  }
  Appender& hex(uint64_t v) {  // "0x1f"
    s_.append("0x");
    return xdigits(v);
  }
  Appender& xdigits(uint64_t v) {  // "1f"
    char b[24];
    auto r = std::to_chars(b, b + sizeof(b), v, 16);
    s_.append(b, r.ptr);
    return *this;
  }
  Appender& xdigits0(uint64_t v, int width) {  // zero-padded hex
    char b[24];
    auto r = std::to_chars(b, b + sizeof(b), v, 16);
    for (int n = static_cast<int>(r.ptr - b); n < width; n++) s_.push_back('0');
    s_.append(b, r.ptr);
    return *this;
  }

 private:
  std::string& s_;
};

}  // namespace vmatrace
