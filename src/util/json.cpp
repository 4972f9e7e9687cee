#include "util/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "util/text.h"

namespace vmatrace {

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ == 0) return;
  const uint64_t bit = uint64_t{1} << ((depth_ - 1) & 63);
  if (nonempty_ & bit) out_ += ',';
  nonempty_ |= bit;
}

JsonWriter& JsonWriter::open(char c) {
  separate();
  out_ += c;
  depth_++;
  nonempty_ &= ~(uint64_t{1} << ((depth_ - 1) & 63));
  return *this;
}

JsonWriter& JsonWriter::close(char c) {
  out_ += c;
  if (depth_ > 0) depth_--;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  separate();
  out_ += '"';
  append_json_escaped(out_, k);
  out_ += "\":";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  separate();
  out_ += '"';
  append_json_escaped(out_, s);
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::integer(auto v) {
  separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::int_value(int64_t v) { return integer(v); }
JsonWriter& JsonWriter::uint_value(uint64_t v) { return integer(v); }

JsonWriter& JsonWriter::value(double v, const char* fmt) {
  if (!std::isfinite(v)) return null();
  separate();
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), fmt, v);
  if (n > 0) out_.append(buf, static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::hex(uint64_t v) {
  separate();
  char buf[24];
  buf[0] = '"';
  buf[1] = '0';
  buf[2] = 'x';
  auto r = std::to_chars(buf + 3, buf + sizeof(buf) - 1, v, 16);
  *r.ptr++ = '"';
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  append_json_escaped(out, s);
  out += '"';
  return out;
}

}  // namespace vmatrace
