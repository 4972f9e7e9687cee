#include "output/fields.h"

#include "core/kernel_view.h"
#include "core/layout.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"
#include "core/vma_changes.h"
#include "output/appender.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

// The name column: the layout's view ([heap], [stack], " (deleted)") when
// there is one.
std::string vma_name(const Vma& v, const Layout* l) {
  return l ? maps_name(*l, v) : (v.path.empty() ? v.special : v.path).str();
}

void dev_text(Appender& a, uint64_t dev) {
  a.xdigits0(dev >> 20, 2) << ':';
  a.xdigits0(dev & 0xfffff, 2);
}

// ---- text ----

void vma_text(std::string& out, const Vma& v, const Layout* l) {
  Appender a(out);
  a.xdigits(v.start) << '-';
  a.xdigits(v.end) << ' ' << v.perms() << ' ';
  // Plain anonymous memory (most VMAs an event shows): its name without
  // building a string, as maps_name() would give it.
  if (v.is_anonymous() && v.anon_name.empty()) {
    if (l && l->is_initial_heap(v))
      a << "[heap]";
    else if (l && l->is_initial_stack(v))
      a << "[stack]";
    else
      a << "anon";
    return;
  }
  std::string name = vma_name(v, l);
  if (name.empty())
    a << "anon";
  else
    append_text_escaped(out, name);
}

void change_vma_text(std::string& out, const Vma& v, const Layout* l) {
  Appender a(out);
  // id 0: a split piece that never stood on its own
  if (v.id)
    a << '#', a.dec(v.id) << ' ';
  else
    a << "#- ";
  vma_text(out, v, l);
}

// A change of vm_flags in place shows which bits came and went: most
// (VM_LOCKED from mlock, VM_DONTCOPY from madvise, ...) are not in perms.
bool flags_delta(const VmaChange& c, uint64_t& set, uint64_t& cleared) {
  if (c.kind != VmaChangeKind::kFlags || c.from.size() != 1 || c.to.size() != 1) return false;
  set = c.to[0].flags & ~c.from[0].flags;
  cleared = c.from[0].flags & ~c.to[0].flags;
  return set || cleared;
}

// One line per change, under the event that caused it.
void changes_text(std::string& out, const std::vector<VmaChange>& changes, const Layout* l) {
  Appender a(out);
  for (const auto& c : changes) {
    a << "\n      " << vma_change_kind_name(c.kind) << ' ';
    for (size_t i = 0; i < c.from.size(); i++) {
      if (i) a << " + ";
      change_vma_text(out, c.from[i], l);
    }
    if (!c.from.empty() && !c.to.empty()) a << " -> ";
    for (size_t i = 0; i < c.to.size(); i++) {
      if (i) a << ", ";
      change_vma_text(out, c.to[i], l);
    }
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared)) {
      a << " [";
      if (set) a << '+' << decode_vm_flags(set);
      if (cleared) a << (set ? " -" : "-") << decode_vm_flags(cleared);
      a << ']';
    }
    if (c.source != VmaChangeSource::kInference) a << "  (" << vma_change_source_name(c.source) << ')';
  }
}

void text_value(std::string& out, const Field& f, const Layout* l, uint64_t base_ts) {
  Appender a(out);
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
      a.dec(f.u);
      break;
    case FieldType::kI64:
      a.sdec(static_cast<int64_t>(f.u));
      break;
    case FieldType::kHex:
    case FieldType::kOffset:
      a.hex(f.u);
      break;
    case FieldType::kPtr:
      if (f.u)
        a.hex(f.u);
      else
        a << "NULL";
      break;
    case FieldType::kSize:
      a.dec(f.u) << " [" << human_size(f.u) << ']';
      break;
    case FieldType::kBytes:
      a << human_size(f.u);
      break;
    case FieldType::kName:
      a << f.s;
      break;
    case FieldType::kText:
      append_text_escaped(out, f.s);
      break;
    case FieldType::kDev:
      dev_text(a, f.u);
      break;
    case FieldType::kTime: {
      uint64_t rel = f.u >= base_ts ? f.u - base_ts : 0;
      a.decw(rel / 1000000000, 5) << '.';
      a.dec0((rel / 1000) % 1000000, 6);
      break;
    }
    case FieldType::kVma:
      if (f.p) vma_text(out, *static_cast<const Vma*>(f.p), l);
      break;
    case FieldType::kVmas: {
      bool first = true;
      for (const auto& v : *static_cast<const std::vector<Vma>*>(f.p)) {
        if (!first) a << ", ";
        vma_text(out, v, l);
        first = false;
      }
      break;
    }
    case FieldType::kChanges:
      changes_text(out, *static_cast<const std::vector<VmaChange>*>(f.p), l);
      break;
  }
}

// ---- JSON ----

void vma_json(JsonWriter& w, const Vma& v, const Layout* l, bool with_id) {
  w.begin_object();
  if (with_id) w.plain_key("id").value(v.id);
  w.plain_key("start").hex(v.start);
  w.plain_key("end").hex(v.end);
  w.plain_key("perms").plain_value(v.perms());
  w.plain_key("offset").value(v.is_file() ? v.pgoff * 4096 : 0);
  std::string dev;
  Appender a(dev);
  dev_text(a, v.dev);
  w.plain_key("dev").plain_value(dev);
  w.plain_key("inode").value(v.ino);
  w.plain_key("path").value(vma_name(v, l));
  w.end_object();
}

void vma_list_json(JsonWriter& w, const std::vector<Vma>& vs, const Layout* l, bool with_id) {
  w.begin_array();
  for (const auto& v : vs) vma_json(w, v, l, with_id);
  w.end_array();
}

void changes_json(JsonWriter& w, const std::vector<VmaChange>& changes, const Layout* l) {
  w.begin_array();
  for (const auto& c : changes) {
    w.begin_object().plain_key("kind").plain_value(vma_change_kind_name(c.kind));
    w.plain_key("from");
    vma_list_json(w, c.from, l, true);
    w.plain_key("to");
    vma_list_json(w, c.to, l, true);
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared)) {
      w.plain_key("flags_set").value(set ? decode_vm_flags(set) : "");
      w.plain_key("flags_cleared").value(cleared ? decode_vm_flags(cleared) : "");
    }
    w.plain_key("source").plain_value(vma_change_source_name(c.source));
    w.end_object();
  }
  w.end_array();
}

void json_member(JsonWriter& w, const Field& f, const Layout* l) {
  if (f.type == FieldType::kEndObject) {
    w.end_object();
    return;
  }
  if (f.type == FieldType::kEndArray) {
    w.end_array();
    return;
  }
  if (f.type == FieldType::kRawJson) {
    w.out() += f.s;  // members with their leading commas, after at least one
    return;
  }
  if (!f.key.empty()) w.plain_key(f.key);
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
      w.value(f.u);
      break;
    case FieldType::kI64:
      w.value(static_cast<int64_t>(f.u));
      break;
    case FieldType::kHex:
    case FieldType::kPtr:
      w.hex(f.u);
      break;
    case FieldType::kName:
      w.plain_value(f.s);
      break;
    case FieldType::kText:
      w.value(f.s);
      break;
    case FieldType::kBool:
      w.value(f.u != 0);
      break;
    case FieldType::kNull:
      w.null();
      break;
    case FieldType::kDev: {
      std::string dev;
      Appender a(dev);
      dev_text(a, f.u);
      w.plain_value(dev);
      break;
    }
    case FieldType::kVma:
      if (f.p)
        vma_json(w, *static_cast<const Vma*>(f.p), l, false);
      else
        w.null();
      break;
    case FieldType::kVmas:
      vma_list_json(w, *static_cast<const std::vector<Vma>*>(f.p), l, false);
      break;
    case FieldType::kChanges:
      changes_json(w, *static_cast<const std::vector<VmaChange>*>(f.p), l);
      break;
    case FieldType::kBeginObject:
      w.begin_object();
      break;
    case FieldType::kBeginArray:
      w.begin_array();
      break;
  }
}

}  // namespace

std::string_view FieldList::hold(std::string_view s) {
  if (held_used_ == held_.size()) held_.emplace_back();
  std::string& h = held_[held_used_++];
  h.assign(s);
  return h;
}

void TextEncoder::encode(const FieldList& list, std::string& out) {
  for (const Field& f : list.fields()) {
    if (!(f.in & kInText)) continue;
    if (f.type == FieldType::kBool && !f.u) continue;
    out += f.text;
    text_value(out, f, list.layout(), base_ts_);
  }
}

void JsonEncoder::members(const FieldList& list, JsonWriter& w) {
  for (const Field& f : list.fields())
    if (f.in & kInJson) json_member(w, f, list.layout());
}

void JsonEncoder::encode(const FieldList& list, std::string& out) {
  JsonWriter w(out);
  w.begin_object();
  members(list, w);
  w.end_object();
}

}  // namespace vmatrace
