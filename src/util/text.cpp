#include "util/text.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace vmatrace {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns its length, 0 if invalid.
size_t utf8_len(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  if (n == 2 && c < 0xc2) return 0;  // overlong
  return n;
}

}  // namespace

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

char* put_human_size(char* p, uint64_t bytes) {
  // Integer arithmetic (this runs per event): one decimal below 10 units,
  // none above, rounded to nearest like "%.1f"/"%.0f".
  static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  char* const end = p + kHumanSizeMax;
  int u = 0;
  if (bytes < 1024) {
    p = std::to_chars(p, end, bytes).ptr;
  } else {
    unsigned __int128 scale = 1;
    while (u < 6 && bytes >= scale * 1024) scale *= 1024, u++;
    unsigned __int128 tenths = (static_cast<unsigned __int128>(bytes) * 10 + scale / 2) / scale;
    if (tenths < 100) {
      p = std::to_chars(p, end, static_cast<uint64_t>(tenths / 10)).ptr;
      *p++ = '.';
      *p++ = static_cast<char>('0' + static_cast<int>(tenths % 10));
    } else {
      p = std::to_chars(p, end, static_cast<uint64_t>((static_cast<unsigned __int128>(bytes) + scale / 2) / scale)).ptr;
    }
  }
  *p++ = ' ';
  return std::copy(units[u].begin(), units[u].end(), p);
}

std::string human_size(uint64_t bytes) {
  char buf[kHumanSizeMax];
  return std::string(buf, put_human_size(buf, bytes));
}

namespace {

// The loop both escapers share: valid multi-byte UTF-8 is kept as it is;
// every other byte goes through `one(out, byte, valid)`.
template <typename One>
void escape_into(std::string& out, std::string_view s, One one) {
  for (size_t i = 0; i < s.size();) {
    // Most strings are plain ASCII that neither escaper changes: copy such a
    // run at once (this runs per event).
    size_t plain = i;
    while (plain < s.size()) {
      auto c = static_cast<unsigned char>(s[plain]);
      if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') break;
      plain++;
    }
    out.append(s.data() + i, plain - i);
    if ((i = plain) == s.size()) break;
    size_t n = utf8_len(s, i);
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    one(out, static_cast<unsigned char>(s[i]), n == 1);
    i++;
  }
}

}  // namespace

std::string escape_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_text_escaped(out, s);
  return out;
}

void append_text_escaped(std::string& out, std::string_view s) {
  escape_into(out, s, [](std::string& o, unsigned char c, bool valid) {
    if (valid && c >= 0x20 && c != 0x7f && c != '\\') {
      o += static_cast<char>(c);
    } else if (c == '\\') {
      o += "\\\\";
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\t') {
      o += "\\t";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      o += buf;
    }
  });
}

void append_json_escaped(std::string& out, std::string_view s) {
  escape_into(out, s, [](std::string& o, unsigned char c, bool valid) {
    if (!valid) {
      o += "\\ufffd";  // invalid UTF-8 byte
    } else if (c == '"') {
      o += "\\\"";
    } else if (c == '\\') {
      o += "\\\\";
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\t') {
      o += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  });
}

std::string escape_json(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_json_escaped(out, s);
  return out;
}

}  // namespace vmatrace
