#include "output/fields.h"

#include <algorithm>
#include <array>
#include <memory>

#include "core/kernel_view.h"
#include "core/layout.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"
#include "core/vma_changes.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

// Bytes no escaper changes (both copy a run of them as it is).
bool plain(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') return false;
  }
  return true;
}

void text_escaped(OutBuffer& out, std::string_view s, std::string& scratch) {
  if (plain(s)) {
    out << s;
    return;
  }
  scratch.clear();
  append_text_escaped(scratch, s);
  out << scratch;
}

// "s", JSON-escaped.
void json_quoted(OutBuffer& out, std::string_view s, std::string& scratch) {
  out << '"';
  if (plain(s)) {
    out << s;
  } else {
    scratch.clear();
    append_json_escaped(scratch, s);
    out << scratch;
  }
  out << '"';
}

char* put_dev(char* p, uint64_t dev) {
  for (int n = OutBuffer::hex_digits(dev >> 20); n < 2; n++) *p++ = '0';
  p = OutBuffer::put_xdigits(p, dev >> 20);
  *p++ = ':';
  for (int n = OutBuffer::hex_digits(dev & 0xfffff); n < 2; n++) *p++ = '0';
  return OutBuffer::put_xdigits(p, dev & 0xfffff);
}
constexpr size_t kDevMax = 2 * OutBuffer::kNumber;

std::string_view change_kind_name(VmaChangeKind k) {
  static const auto names = [] {
    std::array<std::string_view, static_cast<size_t>(VmaChangeKind::kUpdate) + 1> n{};
    for (size_t i = 0; i < n.size(); i++) n[i] = vma_change_kind_name(static_cast<VmaChangeKind>(i));
    return n;
  }();
  return static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : vma_change_kind_name(k);
}

std::string_view change_source_name(VmaChangeSource s) {
  static const auto names = [] {
    std::array<std::string_view, static_cast<size_t>(VmaChangeSource::kKprobe) + 1> n{};
    for (size_t i = 0; i < n.size(); i++) n[i] = vma_change_source_name(static_cast<VmaChangeSource>(i));
    return n;
  }();
  return static_cast<size_t>(s) < names.size() ? names[static_cast<size_t>(s)] : vma_change_source_name(s);
}

// The name column: the layout's view ([heap], [stack], " (deleted)") when
// there is one, else the VMA's own path or special name.
std::string vma_name(const Vma& v, const Layout* l) {
  return l ? maps_name(*l, v) : (v.path.empty() ? v.special : v.path).str();
}

// Plain anonymous memory (most VMAs an event shows): its name without
// building a string, as maps_name() would give it ("" when it has none).
bool plain_anon_name(const Vma& v, const Layout* l, std::string_view& name) {
  if (!v.is_anonymous() || !v.anon_name.empty()) return false;
  name = l && l->is_initial_heap(v) ? "[heap]" : l && l->is_initial_stack(v) ? "[stack]" : "";
  return true;
}

// A name that depends on the VMA's strings only (not on where the layout's
// heap and stack are): cached by them.
bool cacheable(const Vma& v) { return v.is_file() || !v.special.empty(); }

VmaNameCache::Key name_key(const Vma& v, const Layout* l) {
  return {&v.path.str(), &v.special.str(), &v.anon_name.str(), v.deleted, l != nullptr};
}

// ---- text ----

struct TextOut {
  OutBuffer& out;
  const Layout* l;
  VmaNameCache& names;
  std::string& scratch;

  void vma(const Vma& v) {
    char* p = out.room(2 * OutBuffer::kNumber + 8);
    p = OutBuffer::put_xdigits(p, v.start);
    *p++ = '-';
    p = OutBuffer::put_xdigits(p, v.end);
    *p++ = ' ';
    p = put_maps_perms(p, v.flags);
    *p++ = ' ';
    out.commit(p);
    std::string_view name;
    if (plain_anon_name(v, l, name)) {
      out << (name.empty() ? "anon" : name);
      return;
    }
    if (!cacheable(v)) {
      std::string n = vma_name(v, l);
      if (n.empty())
        out << "anon";
      else
        text_escaped(out, n, scratch);
      return;
    }
    const auto key = name_key(v, l);
    const std::string* cached = names.find(key);
    if (!cached) {
      std::string n = vma_name(v, l);
      std::string shown;
      if (n.empty())
        shown = "anon";
      else
        append_text_escaped(shown, n);
      cached = &names.add(key, std::move(shown));
    }
    out << *cached;
  }

  void change_vma(const Vma& v) {
    // id 0: a split piece that never stood on its own
    if (v.id) {
      char* p = out.room(OutBuffer::kNumber + 2);
      *p++ = '#';
      p = OutBuffer::put_dec(p, v.id);
      *p++ = ' ';
      out.commit(p);
    } else {
      out << "#- ";
    }
    vma(v);
  }

  // One line per change, under the event that caused it.
  void changes(const std::vector<VmaChange>& cs);
  void value(const Field& f, uint64_t base_ts);
};

// A change of vm_flags in place shows which bits came and went: most
// (VM_LOCKED from mlock, VM_DONTCOPY from madvise, ...) are not in perms.
bool flags_delta(const VmaChange& c, uint64_t& set, uint64_t& cleared) {
  if (c.kind != VmaChangeKind::kFlags || c.from.size() != 1 || c.to.size() != 1) return false;
  set = c.to[0].flags & ~c.from[0].flags;
  cleared = c.from[0].flags & ~c.to[0].flags;
  return set || cleared;
}

void TextOut::changes(const std::vector<VmaChange>& cs) {
  for (const auto& c : cs) {
    out << "\n      " << change_kind_name(c.kind) << ' ';
    for (size_t i = 0; i < c.from.size(); i++) {
      if (i) out << " + ";
      change_vma(c.from[i]);
    }
    if (!c.from.empty() && !c.to.empty()) out << " -> ";
    for (size_t i = 0; i < c.to.size(); i++) {
      if (i) out << ", ";
      change_vma(c.to[i]);
    }
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared)) {
      out << " [";
      if (set) out << '+' << decode_vm_flags(set);
      if (cleared) out << (set ? " -" : "-") << decode_vm_flags(cleared);
      out << ']';
    }
    if (c.source != VmaChangeSource::kInference) out << "  (" << change_source_name(c.source) << ')';
  }
}

void TextOut::value(const Field& f, uint64_t base_ts) {
  switch (f.type) {
    case FieldType::kLiteral:
    case FieldType::kNull:
    case FieldType::kBeginObject:
    case FieldType::kEndObject:
    case FieldType::kBeginArray:
    case FieldType::kEndArray:
    case FieldType::kRawJson:
    case FieldType::kBool:  // its text (written before) is all it shows
      break;
    case FieldType::kU64:
      out.dec(f.u);
      break;
    case FieldType::kI64:
      out.sdec(static_cast<int64_t>(f.u));
      break;
    case FieldType::kHex:
    case FieldType::kOffset:
      out.hex(f.u);
      break;
    case FieldType::kPtr:
      if (f.u)
        out.hex(f.u);
      else
        out << "NULL";
      break;
    case FieldType::kSize: {
      char* p = out.room(OutBuffer::kNumber + kHumanSizeMax + 3);
      p = OutBuffer::put_dec(p, f.u);
      *p++ = ' ';
      *p++ = '[';
      p = put_human_size(p, f.u);
      *p++ = ']';
      out.commit(p);
      break;
    }
    case FieldType::kBytes:
      out.commit(put_human_size(out.room(kHumanSizeMax), f.u));
      break;
    case FieldType::kName:
      out << f.s;
      break;
    case FieldType::kText:
      text_escaped(out, f.s, scratch);
      break;
    case FieldType::kDev:
      out.commit(put_dev(out.room(kDevMax), f.u));
      break;
    case FieldType::kTime: {
      uint64_t rel = f.u >= base_ts ? f.u - base_ts : 0;
      out.decw(rel / 1000000000, 5) << '.';
      out.dec0((rel / 1000) % 1000000, 6);
      break;
    }
    case FieldType::kVma:
      if (f.p) vma(*static_cast<const Vma*>(f.p));
      break;
    case FieldType::kVmas: {
      bool first = true;
      for (const auto& v : *static_cast<const std::vector<Vma>*>(f.p)) {
        if (!first) out << ", ";
        vma(v);
        first = false;
      }
      break;
    }
    case FieldType::kChanges:
      changes(*static_cast<const std::vector<VmaChange>*>(f.p));
      break;
  }
}

// ---- JSON ----

// Where commas go, as JsonWriter places them: one bit per open container
// (up to 64 deep) that already holds an item.
struct JsonOut {
  OutBuffer& out;
  const Layout* l;
  VmaNameCache& names;
  std::string& scratch;
  uint64_t nonempty = 0;
  int depth = 0;
  bool after_key = false;

  bool comma_due() {
    if (after_key) {
      after_key = false;
      return false;
    }
    if (depth == 0) return false;
    const uint64_t bit = uint64_t{1} << ((depth - 1) & 63);
    const bool due = nonempty & bit;
    nonempty |= bit;
    return due;
  }
  // Where the next value starts, with its comma, and room for n bytes.
  char* value_at(size_t n) {
    const bool comma = comma_due();
    char* p = out.room(n + 1);
    if (comma) *p++ = ',';
    return p;
  }
  void open(char c) {
    char* p = value_at(1);
    *p++ = c;
    out.commit(p);
    depth++;
    nonempty &= ~(uint64_t{1} << ((depth - 1) & 63));
  }
  void close(char c) {
    out << c;
    if (depth > 0) depth--;
  }
  void key(std::string_view k) {
    char* p = value_at(k.size() + 3);
    *p++ = '"';
    p = OutBuffer::put(p, k);
    *p++ = '"';
    *p++ = ':';
    out.commit(p);
    after_key = true;
  }
  void u64(uint64_t v) { out.commit(OutBuffer::put_dec(value_at(OutBuffer::kNumber), v)); }
  void i64(int64_t v) {
    char* p = value_at(OutBuffer::kNumber);
    out.commit(std::to_chars(p, p + OutBuffer::kNumber, v).ptr);
  }
  void hex(uint64_t v) {
    char* p = value_at(OutBuffer::kNumber + 2);
    *p++ = '"';
    p = OutBuffer::put_hex(p, v);
    *p++ = '"';
    out.commit(p);
  }
  void name(std::string_view s) {  // nothing to escape
    char* p = value_at(s.size() + 2);
    *p++ = '"';
    p = OutBuffer::put(p, s);
    *p++ = '"';
    out.commit(p);
  }
  void text(std::string_view s) {
    out.commit(value_at(0));
    json_quoted(out, s, scratch);
  }
  void literal(std::string_view s) { out.commit(OutBuffer::put(value_at(s.size()), s)); }

  void vma(const Vma& v, bool with_id);
  void vma_list(const std::vector<Vma>& vs, bool with_id) {
    open('[');
    for (const auto& v : vs) vma(v, with_id);
    close(']');
  }
  void changes(const std::vector<VmaChange>& cs);
  void member(const Field& f);
};

void JsonOut::vma(const Vma& v, bool with_id) {
  // One object of known shape: written at once, the path last.
  constexpr size_t kFixed = 128 + 5 * OutBuffer::kNumber + kDevMax;
  char* p = value_at(kFixed);
  if (with_id) {
    p = OutBuffer::put(p, "{\"id\":");
    p = OutBuffer::put_dec(p, v.id);
    p = OutBuffer::put(p, ",\"start\":\"0x");
  } else {
    p = OutBuffer::put(p, "{\"start\":\"0x");
  }
  p = OutBuffer::put_xdigits(p, v.start);
  p = OutBuffer::put(p, "\",\"end\":\"0x");
  p = OutBuffer::put_xdigits(p, v.end);
  p = OutBuffer::put(p, "\",\"perms\":\"");
  p = put_maps_perms(p, v.flags);
  p = OutBuffer::put(p, "\",\"offset\":");
  p = OutBuffer::put_dec(p, v.is_file() ? v.pgoff * 4096 : 0);
  p = OutBuffer::put(p, ",\"dev\":\"");
  p = put_dev(p, v.dev);
  p = OutBuffer::put(p, "\",\"inode\":");
  p = OutBuffer::put_dec(p, v.ino);
  p = OutBuffer::put(p, ",\"path\":");
  out.commit(p);
  std::string_view name;
  if (plain_anon_name(v, l, name)) {
    out << '"' << name << '"';
  } else if (!cacheable(v)) {
    json_quoted(out, vma_name(v, l), scratch);
  } else {
    const auto key = name_key(v, l);
    const std::string* cached = names.find(key);
    if (!cached) {
      std::string quoted = json_quote(vma_name(v, l));
      cached = &names.add(key, std::move(quoted));
    }
    out << *cached;
  }
  out << '}';
  // The object is an item of its container (value_at() counted it).
}

void JsonOut::changes(const std::vector<VmaChange>& cs) {
  open('[');
  for (const auto& c : cs) {
    open('{');
    key("kind");
    name(change_kind_name(c.kind));
    key("from");
    vma_list(c.from, true);
    key("to");
    vma_list(c.to, true);
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared)) {
      key("flags_set");
      text(set ? decode_vm_flags(set) : "");
      key("flags_cleared");
      text(cleared ? decode_vm_flags(cleared) : "");
    }
    key("source");
    name(change_source_name(c.source));
    close('}');
  }
  close(']');
}

void JsonOut::member(const Field& f) {
  if (f.type == FieldType::kEndObject) {
    close('}');
    return;
  }
  if (f.type == FieldType::kEndArray) {
    close(']');
    return;
  }
  if (f.type == FieldType::kRawJson) {
    out << f.s;  // members with their leading commas, after at least one
    return;
  }
  if (!f.key.empty()) key(f.key);
  switch (f.type) {
    case FieldType::kLiteral:
    case FieldType::kEndObject:
    case FieldType::kEndArray:
    case FieldType::kRawJson:
      break;
    case FieldType::kU64:
    case FieldType::kOffset:
    case FieldType::kSize:
    case FieldType::kBytes:
    case FieldType::kTime:
      u64(f.u);
      break;
    case FieldType::kI64:
      i64(static_cast<int64_t>(f.u));
      break;
    case FieldType::kHex:
    case FieldType::kPtr:
      hex(f.u);
      break;
    case FieldType::kName:
      name(f.s);
      break;
    case FieldType::kText:
      text(f.s);
      break;
    case FieldType::kBool:
      literal(f.u ? "true" : "false");
      break;
    case FieldType::kNull:
      literal("null");
      break;
    case FieldType::kDev: {
      char* p = value_at(kDevMax + 2);
      *p++ = '"';
      p = put_dev(p, f.u);
      *p++ = '"';
      out.commit(p);
      break;
    }
    case FieldType::kVma:
      if (f.p)
        vma(*static_cast<const Vma*>(f.p), false);
      else
        literal("null");
      break;
    case FieldType::kVmas:
      vma_list(*static_cast<const std::vector<Vma>*>(f.p), false);
      break;
    case FieldType::kChanges:
      changes(*static_cast<const std::vector<VmaChange>*>(f.p));
      break;
    case FieldType::kBeginObject:
      open('{');
      break;
    case FieldType::kBeginArray:
      open('[');
      break;
  }
}

}  // namespace

void OutBuffer::grow(size_t n) {
  size_t cap = std::max<size_t>({cap_ * 2, size_ + n, 4096});
  auto data = std::make_unique_for_overwrite<char[]>(cap);
  if (size_) std::memcpy(data.get(), data_.get(), size_);
  data_ = std::move(data);
  cap_ = cap;
}

size_t VmaNameCache::Hash::operator()(const Key& k) const noexcept {
  auto h = [](const void* p) { return std::hash<const void*>{}(p); };
  size_t x = h(k.path);
  x = x * 31 + h(k.special);
  x = x * 31 + h(k.anon_name);
  return x * 4 + (k.deleted ? 2 : 0) + (k.layout ? 1 : 0);
}

void FieldEncoder::encode(const FieldList& f, std::string& out) {
  OutBuffer buf;
  encode(f, buf);
  out += buf.view();
}

std::string_view FieldList::hold(std::string_view s) {
  if (held_used_ == held_.size()) held_.emplace_back();
  std::string& h = held_[held_used_++];
  h.assign(s);
  return h;
}

void TextEncoder::encode(const FieldList& list, OutBuffer& out) {
  std::string scratch;
  TextOut t{out, list.layout(), names_, scratch};
  for (const Field& f : list.fields()) {
    if (!(f.in & kInText)) continue;
    if (f.type == FieldType::kBool && !f.u) continue;
    out << f.text;
    t.value(f, base_ts_);
  }
}

void JsonEncoder::members(const FieldList& list, JsonWriter& w) {
  // Written as the members of an object of their own, then placed after
  // the members `w` has written so far.
  OutBuffer buf;
  VmaNameCache names;
  std::string scratch;
  JsonOut j{buf, list.layout(), names, scratch};
  j.depth = 1;
  for (const Field& f : list.fields())
    if (f.in & kInJson) j.member(f);
  w.raw_members(buf.view());
}

void JsonEncoder::encode(const FieldList& list, OutBuffer& out) {
  std::string scratch;
  JsonOut j{out, list.layout(), names_, scratch};
  j.open('{');
  for (const Field& f : list.fields())
    if (f.in & kInJson) j.member(f);
  j.close('}');
}

}  // namespace vmatrace
