#pragma once
// The one JSON writer: every JSON that vmatrace prints (events, reports,
// the HTML page's data) is written through it, so escaping and number
// formatting are the same everywhere. It appends to a caller's string
// (no allocation of its own beyond that string's growth) and places the
// commas itself:
//
//   std::string out;
//   JsonWriter w(out);
//   w.begin_object().key("ts").value(uint64_t{12}).key("path").value(path).end_object();
//
// Numbers: integers exactly; doubles through a printf format the caller
// names (reports round shares and rates on purpose), or %.17g.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace vmatrace {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  // The hot members are inline: the printer writes every event through them.
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  // An object member's key; the next value (or container) is its value.
  JsonWriter& key(std::string_view k) {
    separate();
    quoted(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }

  JsonWriter& value(std::string_view s) {
    separate();
    quoted(s);
    return *this;
  }
  // key() and value() for strings known to need no escaping: keys and names
  // spelled in the code (PROT_READ, "rw-p"). Not scanned: per-event output
  // is mostly these.
  JsonWriter& plain_key(std::string_view k) {
    // One append of `,"k":` (the comma when due).
    char buf[72];
    if (k.size() > sizeof(buf) - 4) return key(k);
    char* p = buf;
    if (comma_due()) *p++ = ',';
    *p++ = '"';
    p = std::copy(k.begin(), k.end(), p);
    *p++ = '"';
    *p++ = ':';
    out_.append(buf, static_cast<size_t>(p - buf));
    after_key_ = true;
    return *this;
  }
  JsonWriter& plain_value(std::string_view s) {
    separate();
    out_ += '"';
    out_.append(s);
    out_ += '"';
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) JsonWriter& value(T v) {
    if constexpr (std::is_signed_v<T>)
      return integer(static_cast<int64_t>(v));
    else
      return integer(static_cast<uint64_t>(v));
  }
  // A double with printf format `fmt` (e.g. "%.4f"); non-finite values
  // are written as null (JSON has no NaN).
  JsonWriter& value(double v, const char* fmt = "%.17g");
  JsonWriter& null();
  // "0x7f..." : addresses are hex strings in every vmatrace JSON.
  JsonWriter& hex(uint64_t v);
  // Already-encoded JSON (a nested document written elsewhere).
  JsonWriter& raw(std::string_view json);
  // Already-encoded members ("\"a\":1,\"b\":2", no braces) of the object
  // being written, after its members so far.
  JsonWriter& raw_members(std::string_view members);

  // key(k).value(v) in one call.
  template <typename V>
  JsonWriter& kv(std::string_view k, V&& v) {
    key(k);
    return value(std::forward<V>(v));
  }

  std::string& out() { return out_; }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    depth_++;
    nonempty_ &= ~(uint64_t{1} << ((depth_ - 1) & 63));
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    if (depth_ > 0) depth_--;
    return *this;
  }
  template <typename T>
  JsonWriter& integer(T v) {
    char buf[24];
    char* p = buf;
    if (comma_due()) *p++ = ',';
    auto r = std::to_chars(p, buf + sizeof(buf), v);
    out_.append(buf, r.ptr);
    return *this;
  }
  // Whether a comma goes before the next value or key (and the container
  // now holds an item).
  bool comma_due() {
    if (after_key_) {
      after_key_ = false;
      return false;
    }
    if (depth_ == 0) return false;
    const uint64_t bit = uint64_t{1} << ((depth_ - 1) & 63);
    const bool due = nonempty_ & bit;
    nonempty_ |= bit;
    return due;
  }
  void separate() {
    if (comma_due()) out_ += ',';
  }
  void quoted(std::string_view s);  // "s", escaped

  std::string& out_;
  // One bit per open container (up to 64 deep): it already holds an item.
  uint64_t nonempty_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
};

// s as a quoted JSON string.
std::string json_quote(std::string_view s);

}  // namespace vmatrace
