#include "util/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "util/text.h"

namespace vmatrace {

void JsonWriter::quoted(std::string_view s) {
  // Keys and most values are plain ASCII: one append when nothing needs escaping.
  size_t n = 0;
  while (n < s.size()) {
    auto c = static_cast<unsigned char>(s[n]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') break;
    n++;
  }
  out_ += '"';
  if (n == s.size())
    out_.append(s);
  else
    append_json_escaped(out_, s);
  out_ += '"';
}

JsonWriter& JsonWriter::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

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
  char buf[28];
  char* p = buf;
  if (comma_due()) *p++ = ',';
  *p++ = '"';
  *p++ = '0';
  *p++ = 'x';
  auto r = std::to_chars(p, buf + sizeof(buf) - 1, v, 16);
  *r.ptr++ = '"';
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

JsonWriter& JsonWriter::raw_members(std::string_view members) {
  if (members.empty()) return *this;
  separate();
  out_ += members;
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
