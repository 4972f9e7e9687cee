#include "report/malloc_report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/syscall_names.h"

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

std::string json_str(const std::string& s) { return "\"" + escape_json(s) + "\""; }

std::string frame_json(const StackFrame& f) {
  std::string s = "{\"pc\":\"" + hex(f.pc) + "\",\"function\":";
  s += f.function.empty() ? "null" : json_str(f.function);
  s += ",\"offset\":" + std::to_string(f.offset);
  s += ",\"file\":" + (f.file.empty() ? std::string("null") : json_str(f.file));
  s += ",\"line\":" + (f.line ? std::to_string(f.line) : std::string("null"));
  s += ",\"module\":" + (f.module.empty() ? std::string("null") : json_str(f.module)) + "}";
  return s;
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

std::string growth_text(const MallocGrowth& g) {
  std::string s = g.attribution.allocator ? *g.attribution.allocator : "not from an allocator:";
  if (g.size) s += "(" + std::to_string(*g.size) + ")";
  s += " via " + g.via + " +" + human_size(g.bytes);
  if (g.vma_end > g.vma_start)
    s += " => " + hex(g.vma_start) + "-" + hex(g.vma_end) + " " + g.vma_perms +
         (g.vma_name.empty() ? "" : " " + escape_text(g.vma_name));
  const StackFrame* cs = g.call_site();
  s += " from " + (cs ? frame_text(*cs) : std::string("?"));
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
  std::string s = ",\"allocator\":" + (g.attribution.allocator ? json_str(*g.attribution.allocator) : "null");
  s += ",\"via\":\"" + g.via + "\",\"bytes\":" + std::to_string(g.bytes) + ",\"addr\":\"" + hex(g.addr) + "\"";
  if (g.vma_end > g.vma_start)
    s += ",\"vma\":{\"start\":\"" + hex(g.vma_start) + "\",\"end\":\"" + hex(g.vma_end) + "\",\"perms\":\"" +
         g.vma_perms + "\",\"name\":" + json_str(g.vma_name) + "}";
  else
    s += ",\"vma\":null";
  s += ",\"size\":" + (g.size ? std::to_string(*g.size) : std::string("null"));
  s += ",\"syscall_ts\":" + std::to_string(g.syscall_ts);
  const StackFrame* cs = g.call_site();
  s += ",\"call_site\":" + (cs ? frame_json(*cs) : std::string("null"));
  s += ",\"stack\":[";
  for (size_t i = 0; i < g.stack.size(); i++) s += (i ? "," : "") + frame_json(g.stack[i]);
  s += "]";
  return s;
}

void MallocReport::add(const MallocGrowth& g) {
  std::string alloc = g.attribution.allocator.value_or("");
  auto [fn, loc] = site_of(g);
  Site& s = sites_[{alloc, fn, loc}];
  s.allocator = alloc, s.function = fn, s.location = loc;
  s.count++;
  s.bytes += g.bytes;
  if (g.via == "brk") s.brk_count++, s.brk_bytes += g.bytes;
  else if (g.via == "mprotect") s.mprotect_count++, s.mprotect_bytes += g.bytes;
  else s.mmap_count++, s.mmap_bytes += g.bytes;
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
  std::string s = "{\"growths\":" + std::to_string(growths_) + ",\"bytes\":" + std::to_string(bytes_) +
                  ",\"unattributed_bytes\":" + std::to_string(unattributed_bytes_) + ",\"largest\":";
  if (largest_) {
    s += "{\"pid\":" + std::to_string(largest_->pid) + ",\"tid\":" + std::to_string(largest_->tid) +
         growth_json_fields(*largest_) + "}";
  } else {
    s += "null";
  }
  s += ",\"sites\":[";
  auto v = sites();
  for (size_t i = 0; i < v.size() && (top == 0 || i < top); i++) {
    const Site& x = v[i];
    if (i) s += ",";
    s += "{\"allocator\":" + (x.allocator.empty() ? std::string("null") : json_str(x.allocator)) +
         ",\"function\":" + json_str(x.function) + ",\"location\":" + json_str(x.location) +
         ",\"count\":" + std::to_string(x.count) + ",\"bytes\":" + std::to_string(x.bytes) +
         ",\"brk\":{\"count\":" + std::to_string(x.brk_count) + ",\"bytes\":" + std::to_string(x.brk_bytes) +
         "},\"mmap\":{\"count\":" + std::to_string(x.mmap_count) + ",\"bytes\":" + std::to_string(x.mmap_bytes) +
         "},\"mprotect\":{\"count\":" + std::to_string(x.mprotect_count) +
         ",\"bytes\":" + std::to_string(x.mprotect_bytes) + "},\"largest\":" + std::to_string(x.largest) +
         ",\"largest_via\":\"" + x.largest_via + "\"}";
  }
  s += "]}";
  return s;
}

}  // namespace vmatrace
