#pragma once
// One event as an ordered list of typed fields, and the encoders that walk
// it: text (one line per event, the change lines under it) and JSON (one
// object per event). What an event shows is decided once, where the fields
// are made (output/event_fields.h, report/malloc_report.h); how a kind of
// value looks is decided once per encoder. The model is bpftrace's
// src/output: one record, many encoders.
//
// A field is a small POD of views: the printer runs per event, so a
// FieldList is reused (its vector keeps its capacity) and nothing is copied.
// Strings a field points at must outlive the encoding; a string made for one
// event only goes into hold().

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "output/out_buffer.h"

namespace vmatrace {

class JsonWriter;
class Layout;
struct Vma;
struct VmaChange;

enum class FieldType : uint8_t {
  kLiteral,      // text: the field's text only; JSON: nothing
  kU64,          // decimal
  kI64,          // signed decimal
  kHex,          // "0x1f" / "0x1f"
  kPtr,          // text: hex, NULL when 0 / JSON: "0x.."
  kOffset,       // text: hex / JSON: number
  kSize,         // text: "N [human]" / JSON: number
  kBytes,        // text: human ("4.0 KiB") / JSON: number
  kName,         // a name spelled in the code (PROT_READ, "write", "rw-p"), nothing to escape: as is / JSON string
  kText,         // a string from the kernel or a recording: text escaped / JSON string
  kBool,         // text: the field's text when true / JSON: true, false
  kNull,         // JSON: null
  kDev,          // a device number as /proc prints it: "08:01"
  kTime,         // absolute ns; text: "    1.000123" relative to the encoder's base
  kVma,          // text: "7f..-7f.. rw-p name" / JSON: the VMA object (null when vma is null)
  kVmas,         // text: VMAs separated by ", " / JSON: an array of VMA objects
  kChanges,      // text: one line per change / JSON: an array of change objects
  kBeginObject,  // JSON: a nested object (key may be empty inside an array)
  kEndObject,
  kBeginArray,
  kEndArray,
  kRawJson,  // JSON: `s`, already-encoded object members (",\"k\":v..."), as is
};

inline constexpr uint8_t kInText = 1, kInJson = 2, kInBoth = kInText | kInJson;

struct Field {
  FieldType type = FieldType::kLiteral;
  uint8_t in = kInBoth;     // which encoders show it
  std::string_view key;     // JSON member name, spelled in the code ("" for an array element)
  std::string_view text;    // text: written before the value
  uint64_t u = 0;           // kU64, kHex, kPtr, kOffset, kSize, kDev, kTime; kI64 as its bits; kBool: 0/1
  std::string_view s;       // kName, kText, kRawJson
  const void* p = nullptr;  // kVma: const Vma*; kVmas: const std::vector<Vma>*; kChanges: const std::vector<VmaChange>*
};

class FieldList {
 public:
  void clear() {
    fields_.clear();
    held_used_ = 0;
    layout_ = nullptr;
  }
  // The layout VMA names are read from (nullptr: the VMA's own path).
  void set_layout(const Layout* l) { layout_ = l; }
  const Layout* layout() const { return layout_; }

  // Each returns the field for adjustments (in, text), valid until the next add.
  Field& add(FieldType t, std::string_view key, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = fields_.emplace_back();
    f.type = t, f.key = key, f.text = text, f.in = in;
    return f;
  }
  Field& literal(std::string_view text) { return add(FieldType::kLiteral, {}, text, kInText); }
  Field& u64(std::string_view key, uint64_t v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(FieldType::kU64, key, text, in);
    f.u = v;
    return f;
  }
  Field& i64(std::string_view key, int64_t v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(FieldType::kI64, key, text, in);
    f.u = static_cast<uint64_t>(v);
    return f;
  }
  Field& number(FieldType t, std::string_view key, uint64_t v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(t, key, text, in);
    f.u = v;
    return f;
  }
  Field& name(std::string_view key, std::string_view v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(FieldType::kName, key, text, in);
    f.s = v;
    return f;
  }
  Field& str(std::string_view key, std::string_view v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(FieldType::kText, key, text, in);
    f.s = v;
    return f;
  }
  Field& boolean(std::string_view key, bool v, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(FieldType::kBool, key, text, in);
    f.u = v;
    return f;
  }
  Field& null(std::string_view key) { return add(FieldType::kNull, key, {}, kInJson); }
  Field& pointer(FieldType t, std::string_view key, const void* p, std::string_view text = {}, uint8_t in = kInBoth) {
    Field& f = add(t, key, text, in);
    f.p = p;
    return f;
  }
  void begin_object(std::string_view key) { add(FieldType::kBeginObject, key, {}, kInJson); }
  void end_object() { add(FieldType::kEndObject, {}, {}, kInJson); }
  void begin_array(std::string_view key) { add(FieldType::kBeginArray, key, {}, kInJson); }
  void end_array() { add(FieldType::kEndArray, {}, {}, kInJson); }

  // Another list's fields after these (views: `other` must outlive the encoding).
  void append(const FieldList& other) { fields_.insert(fields_.end(), other.fields_.begin(), other.fields_.end()); }

  // A copy of s that lives until clear(): for strings made for this event.
  std::string_view hold(std::string_view s);

  const std::vector<Field>& fields() const { return fields_; }

 private:
  std::vector<Field> fields_;
  // Never shrunk: the strings keep their capacity, and a deque never moves
  // its elements, so views into them stay valid as it grows.
  std::deque<std::string> held_;
  size_t held_used_ = 0;
  const Layout* layout_ = nullptr;
};

// The name a VMA shows (its maps name, escaped for one encoder), made once
// per distinct (path, special, anon name, deleted) and then looked up: the
// strings are interned, so the key is their addresses.
class VmaNameCache {
 public:
  struct Key {
    const void* path;
    const void* special;
    const void* anon_name;
    bool deleted;
    bool layout;  // named through a layout (maps_name()) or by its own path
    bool operator==(const Key&) const = default;
  };
  // The entry for key, or nullptr; add() makes one.
  const std::string* find(const Key& k) const {
    auto it = names_.find(k);
    return it == names_.end() ? nullptr : &it->second;
  }
  const std::string& add(const Key& k, std::string name) { return names_.emplace(k, std::move(name)).first->second; }

 private:
  struct Hash {
    size_t operator()(const Key& k) const noexcept;
  };
  std::unordered_map<Key, std::string, Hash> names_;
};

// Walks a FieldList into `out` (appended; no newline at the end).
class FieldEncoder {
 public:
  virtual ~FieldEncoder() = default;
  virtual void encode(const FieldList& f, OutBuffer& out) = 0;
  // The same, appended to a string (reports, tests: not per event).
  void encode(const FieldList& f, std::string& out);
};

class TextEncoder : public FieldEncoder {
 public:
  using FieldEncoder::encode;
  // kTime fields are shown relative to base_ts.
  void set_base_ts(uint64_t ts) { base_ts_ = ts; }
  uint64_t base_ts() const { return base_ts_; }
  void encode(const FieldList& f, OutBuffer& out) override;

 private:
  uint64_t base_ts_ = 0;
  VmaNameCache names_;
};

class JsonEncoder : public FieldEncoder {
 public:
  using FieldEncoder::encode;
  // One object.
  void encode(const FieldList& f, OutBuffer& out) override;
  // The fields as members of the object `w` is in.
  static void members(const FieldList& f, JsonWriter& w);

 private:
  VmaNameCache names_;
};

}  // namespace vmatrace
