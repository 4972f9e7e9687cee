#include "sym/jit_symbols.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

#include "util/unique_fd.h"

namespace vmatrace {
namespace {

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::vector<JitCode> parse_perf_map(std::string_view text) {
  std::vector<JitCode> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t a = line.find(' ');
    if (a == std::string_view::npos) continue;
    size_t b = line.find(' ', a + 1);
    if (b == std::string_view::npos) continue;
    JitCode c;
    if (!parse_hex(line.substr(0, a), c.start) || !parse_hex(line.substr(a + 1, b - a - 1), c.size) || c.size == 0 ||
        c.start + c.size < c.start)
      continue;
    c.name = std::string(line.substr(b + 1));
    if (c.name.empty()) continue;
    out.push_back(std::move(c));
  }
  return out;
}

void JitTable::add(JitCode c) {
  const uint64_t end = c.start + c.size;
  auto it = by_start_.lower_bound(c.start);
  if (it != by_start_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.start + prev->second.size > c.start) it = prev;
  }
  while (it != by_start_.end() && it->first < end) it = by_start_.erase(it);
  by_start_.emplace(c.start, std::move(c));
}

const JitCode* JitTable::find(uint64_t pc) const {
  auto it = by_start_.upper_bound(pc);
  if (it == by_start_.begin()) return nullptr;
  --it;
  return pc - it->second.start < it->second.size ? &it->second : nullptr;
}

std::vector<JitCode> JitTable::entries() const {
  std::vector<JitCode> out;
  out.reserve(by_start_.size());
  for (const auto& [start, c] : by_start_) out.push_back(c);
  return out;
}

std::string perf_map_path(uint32_t pid) {
  const std::string name = "/tmp/perf-" + std::to_string(pid) + ".map";
  const std::string root = "/proc/" + std::to_string(pid) + "/root";
  return ::access(root.c_str(), F_OK) == 0 ? root + name : name;
}

bool PerfMapFile::refresh(JitTable& table) {
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return false;
  struct stat st;
  // Only a regular file: /tmp is writable by anyone, a FIFO there would block us.
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < offset_) {  // rewritten by a new process with this pid
    offset_ = 0;
    partial_.clear();
  }
  if (size == offset_) return true;
  std::string text = std::move(partial_);
  partial_.clear();
  const size_t had = text.size();
  text.resize(had + (size - offset_));
  ssize_t n = ::pread(fd.get(), text.data() + had, size - offset_, static_cast<off_t>(offset_));
  if (n <= 0) {
    partial_ = text.substr(0, had);
    return true;
  }
  text.resize(had + static_cast<size_t>(n));
  offset_ += static_cast<uint64_t>(n);
  size_t last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) {
    partial_ = std::move(text);
    return true;
  }
  partial_ = text.substr(last_nl + 1);
  for (auto& c : parse_perf_map(std::string_view(text).substr(0, last_nl + 1))) table.add(std::move(c));
  return true;
}

void JitSymbols::add_record(uint32_t pid, uint64_t ts, std::span<const JitCode> code) {
  auto& table = recorded_[pid][ts];
  for (const auto& c : code) table.add(c);
}

const JitCode* JitSymbols::find(uint32_t pid, uint64_t ts, uint64_t pc) {
  if (auto p = recorded_.find(pid); p != recorded_.end()) {
    auto t = p->second.lower_bound(ts);
    if (t != p->second.end())
      if (const JitCode* c = t->second.find(pc)) return c;
  }
  if (!live_) return nullptr;
  auto it = live_files_.find(pid);
  if (it == live_files_.end()) it = live_files_.emplace(pid, LiveFile{PerfMapFile(perf_map_path(pid)), {}}).first;
  if (const JitCode* c = it->second.table.find(pc)) return c;
  // Not there yet: the runtime may have appended it since the last read.
  if (!it->second.file.refresh(it->second.table)) return nullptr;
  return it->second.table.find(pc);
}

}  // namespace vmatrace
