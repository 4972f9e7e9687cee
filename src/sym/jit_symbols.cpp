#include "sym/jit_symbols.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/openat2.h>
#include <sys/syscall.h>

#include <algorithm>
#include <charconv>

#include "util/time.h"
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

namespace {

// jitdump-specification.txt: the file header, then records that each start
// with {id, total_size, timestamp}.
constexpr uint32_t kJitDumpMagic = 0x4A695444;  // "JiTD" in the writer's byte order
constexpr uint32_t kJitCodeLoad = 0, kJitCodeMove = 1;
struct JitDumpHeader {
  uint32_t magic, version, total_size, elf_mach, pad1, pid;
  uint64_t timestamp, flags;
};
struct JitRecordPrefix {
  uint32_t id, total_size;
  uint64_t timestamp;
};
struct JitCodeLoad {  // then the name (NUL-terminated), then code_size bytes of code
  uint32_t pid, tid;
  uint64_t vma, code_addr, code_size, code_index;
};
struct JitCodeMove {
  uint32_t pid, tid;
  uint64_t vma, old_code_addr, new_code_addr, code_size, code_index;
};
static_assert(sizeof(JitDumpHeader) == 40 && sizeof(JitRecordPrefix) == 16 && sizeof(JitCodeLoad) == 40 &&
              sizeof(JitCodeMove) == 48);
// A name longer than this is not one a runtime wrote.
constexpr uint64_t kMaxJitName = 64 << 10;

template <typename T>
bool pread_exact(int fd, T& out, uint64_t pos) {
  return ::pread(fd, &out, sizeof(out), static_cast<off_t>(pos)) == static_cast<ssize_t>(sizeof(out));
}

// "NSpid:" of /proc/PID/status: the process's pid in each PID namespace it
// is in, its own last; pid itself when not readable.
uint32_t own_pid(uint32_t pid) {
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/status").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return pid;
  char buf[4096];
  const ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return pid;
  std::string_view status(buf, static_cast<size_t>(n));
  const size_t at = status.find("\nNSpid:");
  if (at == std::string_view::npos) return pid;
  std::string_view line = status.substr(at + 7);
  line = line.substr(0, line.find('\n'));
  const size_t last = line.find_last_of(" \t");
  line = last == std::string_view::npos ? line : line.substr(last + 1);
  uint32_t out = 0;
  auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), out);
  return ec == std::errc() && out ? out : pid;
}

// Whether /proc/PID/<ns> differs from ours (the file names pid's own).
bool differs_from_ours(const std::string& theirs, const char* ours) {
  struct stat a, b;
  if (::stat(theirs.c_str(), &a) != 0 || ::stat(ours, &b) != 0) return false;
  return a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

}  // namespace

bool JitDumpReader::read(int fd, JitTable& table) {
  if (bad_) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < pos_) pos_ = 0;  // rewritten by a new process with this pid
  if (pos_ == 0) {
    JitDumpHeader h;
    if (size < sizeof(h)) return true;  // not written yet
    if (!pread_exact(fd, h, 0) || h.magic != kJitDumpMagic || h.total_size < sizeof(h)) return !(bad_ = true);
    pos_ = h.total_size;
  }
  while (pos_ + sizeof(JitRecordPrefix) <= size) {
    JitRecordPrefix r;
    if (!pread_exact(fd, r, pos_)) break;
    if (r.total_size < sizeof(r)) return !(bad_ = true);
    if (pos_ + r.total_size > size) break;  // still being written
    const uint64_t body = r.total_size - sizeof(r);
    if (r.id == kJitCodeLoad) {
      JitCodeLoad l;
      if (body < sizeof(l) || !pread_exact(fd, l, pos_ + sizeof(r)) || l.code_size > body - sizeof(l))
        return !(bad_ = true);
      const uint64_t name_room = std::min(body - sizeof(l) - l.code_size, kMaxJitName);
      std::string name(name_room, '\0');
      if (::pread(fd, name.data(), name.size(), static_cast<off_t>(pos_ + sizeof(r) + sizeof(l))) !=
          static_cast<ssize_t>(name.size()))
        break;
      name.resize(std::min(name.find('\0'), name.size()));
      if (l.code_size && !name.empty() && l.code_addr + l.code_size > l.code_addr)
        table.add({l.code_addr, l.code_size, std::move(name)});
    } else if (r.id == kJitCodeMove) {
      JitCodeMove m;
      if (body < sizeof(m) || !pread_exact(fd, m, pos_ + sizeof(r))) return !(bad_ = true);
      if (const JitCode* old = table.find(m.old_code_addr);
          old && m.code_size && m.new_code_addr + m.code_size > m.new_code_addr)
        table.add({m.new_code_addr, m.code_size, old->name});
    }
    pos_ += r.total_size;  // debug info, unwinding info, close: not names
  }
  return true;
}

JitSource::JitSource(uint32_t pid) : pid_(pid), nspid_(own_pid(pid)) {
  // A process that sees another file tree (its own mount namespace or
  // root: a container) keeps its files there; its root is held open to
  // read them after it exited. Ours: the paths are the same here.
  const std::string proc = "/proc/" + std::to_string(pid);
  if (differs_from_ours(proc + "/ns/mnt", "/proc/self/ns/mnt") || differs_from_ours(proc + "/root", "/"))
    root_.reset(::open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

UniqueFd JitSource::open_in_root(const std::string& path) const {
  if (!root_) return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  // Resolved as the process would (its symlinks stay inside its root).
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return UniqueFd(static_cast<int>(::syscall(SYS_openat2, root_.get(), path.c_str(), &how, sizeof(how))));
}

bool JitSource::is_jitdump_name(std::string_view path) const {
  const size_t slash = path.rfind('/');
  return path.substr(slash == std::string_view::npos ? 0 : slash + 1) == "jit-" + std::to_string(nspid_) + ".dump";
}

void JitSource::open_jitdump(std::string_view path) {
  if (!dump_ && is_jitdump_name(path)) dump_ = open_in_root(std::string(path));
}

void JitSource::open_perf_map() {
  UniqueFd fd = open_in_root("/tmp/perf-" + std::to_string(nspid_) + ".map");
  struct stat st, held;
  // Only a regular file: /tmp is writable by anyone, a FIFO there would block us.
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // gone: the one held stays
  if (map_fd_ && ::fstat(map_fd_.get(), &held) == 0 && held.st_dev == st.st_dev && held.st_ino == st.st_ino) return;
  // Another file than the one held (a runtime that made it anew, over the
  // leftover of an earlier process with this pid): read it from its start.
  map_fd_ = std::move(fd);
  map_offset_ = 0;
  map_partial_.clear();
}

void JitSource::find_jitdump_in_maps() {
  // The mapping itself (map_files) rather than its path: that is the file
  // the runtime writes, whatever our view of its file tree.
  const std::string proc = "/proc/" + std::to_string(pid_);
  UniqueFd fd(::open((proc + "/maps").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return;
  std::string text;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof(buf))) > 0;) text.append(buf, static_cast<size_t>(n));
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    const size_t path_at = line.find('/');
    const size_t perms_at = line.find(' ') + 1;  // "r-xp": mapped executable, as perf wants it
    if (path_at == std::string_view::npos || perms_at == 0 || line.size() < perms_at + 4 || line[perms_at + 2] != 'x' ||
        !is_jitdump_name(line.substr(path_at)))
      continue;
    const std::string range(line.substr(0, perms_at - 1));
    dump_.reset(::open((proc + "/map_files/" + range).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    // map_files needs CAP_SYS_ADMIN: else the path, through its root.
    if (!dump_) dump_ = open_in_root(std::string(line.substr(path_at)));
    if (dump_) return;
  }
}

bool JitSource::refresh_perf_map(JitTable& table) {
  open_perf_map();
  struct stat st;
  if (!map_fd_ || ::fstat(map_fd_.get(), &st) != 0) return false;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < map_offset_) {  // rewritten by a new process with this pid
    map_offset_ = 0;
    map_partial_.clear();
  }
  if (size == map_offset_) return true;
  std::string text = std::move(map_partial_);
  map_partial_.clear();
  const size_t had = text.size();
  text.resize(had + (size - map_offset_));
  ssize_t n = ::pread(map_fd_.get(), text.data() + had, size - map_offset_, static_cast<off_t>(map_offset_));
  if (n <= 0) {
    map_partial_ = text.substr(0, had);
    return true;
  }
  text.resize(had + static_cast<size_t>(n));
  map_offset_ += static_cast<uint64_t>(n);
  size_t last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) {
    map_partial_ = std::move(text);
    return true;
  }
  map_partial_ = text.substr(last_nl + 1);
  for (auto& c : parse_perf_map(std::string_view(text).substr(0, last_nl + 1))) table.add(std::move(c));
  return true;
}

bool JitSource::refresh(JitTable& table, bool find_jitdump) {
  const bool map = refresh_perf_map(table);
  if (!dump_ && find_jitdump) find_jitdump_in_maps();
  return dump_ ? dump_reader_.read(dump_.get(), table) || map : map;
}

void JitSymbols::add_record(uint32_t pid, uint64_t ts, std::span<const JitCode> code) {
  auto& table = recorded_[pid][ts];
  for (const auto& c : code) table.add(c);
}

const JitCode* JitSymbols::find(uint32_t pid, uint64_t ts, uint64_t pc, std::string_view jitdump) {
  if (loader_) {
    auto load = std::move(loader_);
    loader_ = nullptr;
    load(*this);
  }
  if (auto p = recorded_.find(pid); p != recorded_.end()) {
    auto t = p->second.lower_bound(ts);
    if (t != p->second.end())
      if (const JitCode* c = t->second.find(pc)) return c;
  }
  if (!live_) return nullptr;
  auto it = live_files_.find(pid);
  if (it == live_files_.end()) it = live_files_.emplace(pid, LiveFile{JitSource(pid), {}}).first;
  LiveFile& live = it->second;
  if (const JitCode* c = live.table.find(pc)) return c;
  if (!jitdump.empty()) live.source.open_jitdump(jitdump);
  // Not there yet: the runtime may have appended it since the last read.
  // Its mappings are searched for a jitdump at most once a second (frames
  // in no module and no JIT code must not each cost a read of its maps).
  const uint64_t now = monotonic_ns();
  const bool look = !live.source.has_jitdump() && now - live.maps_looked_ns >= 1'000'000'000;
  if (look) live.maps_looked_ns = now;
  if (!live.source.refresh(live.table, look)) return nullptr;
  return live.table.find(pc);
}

}  // namespace vmatrace
