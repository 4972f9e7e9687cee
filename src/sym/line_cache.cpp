#include "sym/line_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/hex.h"
#include "util/text.h"

namespace vmatrace {
namespace {

// A cache file larger than this is not read (a damaged or planted one).
constexpr off_t kMaxFileBytes = 64 << 20;

// Whether st (of a file or the directory) may be trusted by this user:
// owned by it, writable by no one else.
const char* untrusted(const struct stat& st) {
  if (st.st_uid != ::geteuid()) return "is owned by another user";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "is writable by others";
  return nullptr;
}

// The file of the object whose build id starts with id0, id1.
std::string file_name(uint64_t id0, uint64_t id1) {
  unsigned char bytes[16];
  std::memcpy(bytes, &id0, 8);
  std::memcpy(bytes + 8, &id1, 8);
  return hex_bytes(bytes, sizeof bytes) + ".lines";
}

// mkdir -p with mode 0700 for what it creates.
bool make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace

std::string LineCache::default_dir() {
  if (const char* env = std::getenv("VMATRACE_CACHE_DIR")) {
    const std::string_view v = env;
    return v == "off" ? std::string() : std::string(v);
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') return std::string(xdg) + "/vmatrace";
  if (const char* home = std::getenv("HOME"); home && home[0] == '/') return std::string(home) + "/.cache/vmatrace";
  return {};
}

LineCache::LineCache(std::string dir) : dir_(std::move(dir)) {}

void LineCache::off(const std::string& why) {
  if (dirfd_ || !opened_)
    std::fprintf(stderr,
                 "vmatrace: symbol cache %s %s; source lines are looked up anew (VMATRACE_CACHE_DIR=off turns the "
                 "cache off)\n",
                 escape_text(dir_).c_str(), why.c_str());
  opened_ = true;
  dirfd_.reset();
}

bool LineCache::usable() {
  if (opened_) return static_cast<bool>(dirfd_);
  if (dir_.empty() || dir_[0] != '/') {
    opened_ = true;  // off: nothing to say
    return false;
  }
  if (!make_dirs(dir_)) {
    off(std::string("cannot be created: ") + std::strerror(errno));
    return false;
  }
  UniqueFd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    off(errno == ELOOP || errno == ENOTDIR ? "is not a directory (or is a symbolic link)"
                                           : std::string("cannot be opened: ") + std::strerror(errno));
    return false;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    off(std::string("cannot be read: ") + std::strerror(errno));
    return false;
  }
  if (const char* why = untrusted(st)) {
    off(why);
    return false;
  }
  opened_ = true;
  dirfd_ = std::move(fd);
  return true;
}

LineCache::Object& LineCache::object(uint64_t id0, uint64_t id1) {
  auto [it, fresh] = objects_.try_emplace({id0, id1});
  if (fresh) load(it->second, file_name(id0, id1));
  return it->second;
}

void LineCache::load(Object& o, const std::string& name) {
  UniqueFd fd(::openat(dirfd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno != ENOENT) o.read_only = true;  // a link, or unreadable: leave it alone
    return;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || untrusted(st) || st.st_size > kMaxFileBytes) {
    o.read_only = true;
    return;
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  // "OFFSET LINE LENGTH FILE\n": an entry cut short (a run that ended
  // mid-write) has fewer than LENGTH bytes of name and is skipped, as is
  // anything malformed.
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    const std::string_view entry(text.data() + pos, nl - pos);
    pos = nl + 1;
    uint64_t field[3] = {};
    size_t at = 0;
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++) {
      const size_t sp = entry.find(' ', at);
      if (sp == std::string_view::npos || sp == at) {
        ok = false;
        break;
      }
      const std::string s(entry.substr(at, sp - at));
      char* end = nullptr;
      field[i] = std::strtoull(s.c_str(), &end, i == 0 ? 16 : 10);
      ok = !*end;
      at = sp + 1;
    }
    if (!ok || field[1] == 0 || field[1] > (1u << 30) || field[2] == 0 || entry.size() - at != field[2]) continue;
    o.lines.insert_or_assign(field[0],
                             std::pair<std::string, int>(std::string(entry.substr(at)), static_cast<int>(field[1])));
  }
}

const std::pair<std::string, int>* LineCache::find(uint64_t id0, uint64_t id1, uint64_t offset) {
  if (!usable()) return nullptr;
  Object& o = object(id0, id1);
  auto it = o.lines.find(offset);
  return it == o.lines.end() ? nullptr : &it->second;
}

void LineCache::add(uint64_t id0, uint64_t id1, uint64_t offset, const std::string& file, int line) {
  if (line <= 0 || file.empty() || file.find('\n') != std::string::npos || !usable()) return;
  Object& o = object(id0, id1);
  o.lines.insert_or_assign(offset, std::pair<std::string, int>(file, line));
  if (o.read_only) return;
  if (!o.out) {
    const std::string name = file_name(id0, id1);
    UniqueFd fd(::openat(dirfd_.get(), name.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || untrusted(st)) {
      o.read_only = true;
      return;
    }
    // A run that stopped mid-entry left a line without its newline: end
    // it (it is then shorter than its LENGTH, and skipped) rather than
    // join it with the next entry.
    char last = '\n';
    if (st.st_size > 0 && ::pread(fd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n' &&
        ::write(fd.get(), "\n", 1) != 1) {
      o.read_only = true;
      return;
    }
    o.out = std::move(fd);
  }
  char head[48];
  const int n =
      std::snprintf(head, sizeof head, "%llx %d %zu ", static_cast<unsigned long long>(offset), line, file.size());
  std::string entry(head, static_cast<size_t>(n));
  entry += file;
  entry += '\n';
  // One write() per entry (O_APPEND): runs appending at once do not
  // interleave inside an entry.
  const ssize_t w = ::write(o.out.get(), entry.data(), entry.size());
  if (w != static_cast<ssize_t>(entry.size())) {
    const int err = w < 0 ? errno : ENOSPC;
    off(std::string("cannot be written: ") + std::strerror(err));
  }
}

}  // namespace vmatrace
