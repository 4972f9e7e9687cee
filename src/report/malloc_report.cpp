#include "report/malloc_report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "output/fields.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

std::string location_of(const StackFrame& f) {
  if (!f.file.empty()) {
    auto slash = f.file.rfind('/');
    return f.file.substr(slash == std::string::npos ? 0 : slash + 1) + ":" + std::to_string(f.line);
  }
  if (!f.module.empty()) {
    auto slash = f.module.rfind('/');
    return f.module.substr(slash == std::string::npos ? 0 : slash + 1);
  }
  return "";
}

// A stack frame as a JSON object (JSON only: the text shows frame_text()).
void frame_fields(FieldList& f, std::string_view key, const StackFrame& fr) {
  f.begin_object(key);
  f.number(FieldType::kHex, "pc", fr.pc, {}, kInJson);
  if (fr.function.empty())
    f.null("function");
  else
    f.str("function", fr.function, {}, kInJson);
  f.u64("offset", fr.offset, {}, kInJson);
  if (fr.file.empty())
    f.null("file");
  else
    f.str("file", fr.file, {}, kInJson);
  if (fr.line)
    f.u64("line", fr.line, {}, kInJson);
  else
    f.null("line");
  if (fr.module.empty())
    f.null("module");
  else
    f.str("module", fr.module, {}, kInJson);
  f.end_object();
}

}  // namespace

std::string frame_text(const StackFrame& f) {
  std::string loc = location_of(f);
  std::string s;
  if (!f.function.empty()) {
    char off[32];
    std::snprintf(off, sizeof(off), "+0x%" PRIx64, f.offset);
    s = f.function + off;
  } else {
    s = hex(f.pc);
  }
  if (!loc.empty()) s += " (" + loc + ")";
  return escape_text(s);
}

void growth_fields(const MallocGrowth& g, FieldList& f) {
  if (g.attribution.allocator) {
    f.name("allocator", *g.attribution.allocator);
  } else {
    f.literal("not from an allocator:");
    f.null("allocator");
  }
  if (g.size) {
    f.u64({}, *g.size, "(", kInText);
    f.literal(")");
  }
  f.name("via", g.via, " via ");
  f.number(FieldType::kBytes, "bytes", g.bytes, " +");
  f.number(FieldType::kHex, "addr", g.addr, {}, kInJson);
  if (g.vma_end > g.vma_start) {
    f.begin_object("vma");
    f.number(FieldType::kHex, "start", g.vma_start, " => ");
    f.number(FieldType::kHex, "end", g.vma_end, "-");
    f.name("perms", g.vma_perms, " ");
    f.str("name", g.vma_name, {}, kInJson);
    if (!g.vma_name.empty()) f.str({}, g.vma_name, " ", kInText);
    f.end_object();
  } else {
    f.null("vma");
  }
  if (g.size)
    f.u64("size", *g.size, {}, kInJson);
  else
    f.null("size");
  f.u64("syscall_ts", g.syscall_ts, {}, kInJson);
  const StackFrame* cs = g.call_site();
  f.name({}, cs ? f.hold(frame_text(*cs)) : "?", " from ", kInText);
  if (cs)
    frame_fields(f, "call_site", *cs);
  else
    f.null("call_site");
  f.begin_array("stack");
  for (const auto& fr : g.stack) frame_fields(f, {}, fr);
  f.end_array();
}

std::string growth_text(const MallocGrowth& g) {
  FieldList f;
  growth_fields(g, f);
  std::string s;
  TextEncoder().encode(f, s);
  return s;
}

namespace {
// The ranking's key parts: (function, location) of the call site.
std::pair<std::string, std::string> site_of(const MallocGrowth& g) {
  const StackFrame* cs = g.call_site();
  return {cs && !cs->function.empty() ? cs->function : "?", cs ? location_of(*cs) : ""};
}
}  // namespace

std::string call_site_label(const MallocGrowth& g) {
  auto [fn, loc] = site_of(g);
  return loc.empty() ? fn : fn + " (" + loc + ")";
}

std::string growth_json_fields(const MallocGrowth& g) {
  FieldList f;
  growth_fields(g, f);
  std::string obj;
  JsonEncoder().encode(f, obj);
  // The members without the braces, each after a comma.
  return "," + obj.substr(1, obj.size() - 2);
}

void MallocReport::add(const MallocGrowth& g) {
  std::string alloc = g.attribution.allocator.value_or("");
  auto [fn, loc] = site_of(g);
  Site& s = sites_[{alloc, fn, loc}];
  s.allocator = alloc, s.function = fn, s.location = loc;
  s.count++;
  s.bytes += g.bytes;
  if (g.via == "brk")
    s.brk_count++, s.brk_bytes += g.bytes;
  else if (g.via == "mprotect")
    s.mprotect_count++, s.mprotect_bytes += g.bytes;
  else
    s.mmap_count++, s.mmap_bytes += g.bytes;
  if (g.bytes > s.largest) s.largest = g.bytes, s.largest_via = g.via;
  growths_++;
  bytes_ += g.bytes;
  if (!g.attribution.allocator) unattributed_bytes_ += g.bytes;
  if (!largest_ || g.bytes > largest_->bytes) largest_ = g;
}

std::vector<MallocReport::Site> MallocReport::sites() const {
  std::vector<Site> v;
  for (const auto& [k, s] : sites_) v.push_back(s);
  std::stable_sort(v.begin(), v.end(), [](const Site& a, const Site& b) { return a.bytes > b.bytes; });
  return v;
}

std::string MallocReport::text(size_t top) const {
  std::string s = "malloc growth: " + std::to_string(growths_) + " growths, " + human_size(bytes_) + " (" +
                  human_size(bytes_ - unattributed_bytes_) + " from allocators, " + human_size(unattributed_bytes_) +
                  " not from an allocator)\n";
  if (largest_) s += "largest single growth: " + growth_text(*largest_) + "\n";
  auto v = sites();
  if (v.empty()) return s;
  char line[512];
  std::snprintf(line, sizeof(line), "%12s %6s %12s %12s %12s %12s  %s\n", "bytes", "count", "brk", "mmap/mremap",
                "mprotect", "largest", "allocator  call site");
  s += line;
  for (size_t i = 0; i < v.size() && (top == 0 || i < top); i++) {
    const Site& x = v[i];
    std::string who = (x.allocator.empty() ? std::string("(none)") : x.allocator) + "  " + escape_text(x.function) +
                      (x.location.empty() ? "" : " (" + escape_text(x.location) + ")");
    std::snprintf(line, sizeof(line), "%12s %6" PRIu64 " %12s %12s %12s %12s  %s\n", human_size(x.bytes).c_str(),
                  x.count, human_size(x.brk_bytes).c_str(), human_size(x.mmap_bytes).c_str(),
                  human_size(x.mprotect_bytes).c_str(), human_size(x.largest).c_str(), who.c_str());
    s += line;
  }
  return s;
}

std::string MallocReport::json(size_t top) const {
  std::string s;
  JsonWriter w(s);
  w.begin_object().kv("growths", growths_).kv("bytes", bytes_).kv("unattributed_bytes", unattributed_bytes_);
  w.key("largest");
  if (largest_) {
    w.begin_object().kv("pid", largest_->pid).kv("tid", largest_->tid);
    FieldList f;
    growth_fields(*largest_, f);
    JsonEncoder::members(f, w);
    w.end_object();
  } else {
    w.null();
  }
  w.key("sites").begin_array();
  auto v = sites();
  for (size_t i = 0; i < v.size() && (top == 0 || i < top); i++) {
    const Site& x = v[i];
    w.begin_object().key("allocator");
    if (x.allocator.empty())
      w.null();
    else
      w.value(x.allocator);
    w.kv("function", x.function).kv("location", x.location).kv("count", x.count).kv("bytes", x.bytes);
    w.key("brk").begin_object().kv("count", x.brk_count).kv("bytes", x.brk_bytes).end_object();
    w.key("mmap").begin_object().kv("count", x.mmap_count).kv("bytes", x.mmap_bytes).end_object();
    w.key("mprotect").begin_object().kv("count", x.mprotect_count).kv("bytes", x.mprotect_bytes).end_object();
    w.kv("largest", x.largest).kv("largest_via", x.largest_via);
    w.end_object();
  }
  w.end_array().end_object();
  return s;
}

}  // namespace vmatrace
