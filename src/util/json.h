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

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace vmatrace {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  // An object member's key; the next value (or container) is its value.
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  template <typename T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  JsonWriter& value(T v) {
    if constexpr (std::is_signed_v<T>)
      return int_value(static_cast<int64_t>(v));
    else
      return uint_value(static_cast<uint64_t>(v));
  }
  // A double with printf format `fmt` (e.g. "%.4f"); non-finite values
  // are written as null (JSON has no NaN).
  JsonWriter& value(double v, const char* fmt = "%.17g");
  JsonWriter& null();
  // "0x7f..." : addresses are hex strings in every vmatrace JSON.
  JsonWriter& hex(uint64_t v);
  // Already-encoded JSON (a nested document written elsewhere).
  JsonWriter& raw(std::string_view json);

  // key(k).value(v) in one call.
  template <typename V>
  JsonWriter& kv(std::string_view k, V&& v) {
    key(k);
    return value(std::forward<V>(v));
  }

  std::string& out() { return out_; }

 private:
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  JsonWriter& int_value(int64_t v);
  JsonWriter& uint_value(uint64_t v);
  JsonWriter& integer(auto v);
  void separate();  // the comma before a value or key, when one is due

  std::string& out_;
  // One bit per open container (up to 64 deep): it already holds an item.
  uint64_t nonempty_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
};

// s as a quoted JSON string.
std::string json_quote(std::string_view s);

}  // namespace vmatrace
