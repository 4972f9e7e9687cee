#pragma once
// Source lines (file:line) found before, kept across runs by the build id
// of their object, as perf keeps its build-id cache (~/.debug): the first
// line looked up in an object makes libdw inflate that object's whole DWARF
// (about 0.1 s for libc6-dbg's libc here), which then every later trace,
// replay and report of a program using it skips.
//
// One file per object: DIR/<the build id's first 16 bytes, 32 hex
// digits>.lines, one "OFFSET LINE LENGTH FILE" line per address (OFFSET in
// hex, from the object's start; LENGTH the bytes of FILE, so an entry cut
// short is known), appended as lines are found. A build id names
// the object's contents, so an entry never goes stale. Only lines found are
// kept: an address without one is looked up again (cheap without DWARF,
// and right once a debug package is installed).
//
// vmatrace runs as root: the cache is used only where that is safe. DIR
// must be a directory owned by the effective user and writable by no one
// else, and its files likewise; nothing is reached through a symbolic link
// (O_NOFOLLOW, openat() from DIR's descriptor). Otherwise it is off for the
// run, said once on stderr, and lines are looked up as without it.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "util/unique_fd.h"

namespace vmatrace {

class LineCache {
 public:
  // VMATRACE_CACHE_DIR (empty or "off": no cache), else
  // $XDG_CACHE_HOME/vmatrace, else $HOME/.cache/vmatrace; "" when off or
  // there is no home.
  static std::string default_dir();

  // dir: created (0700, with any missing parent) at the first look-up.
  explicit LineCache(std::string dir);
  LineCache(const LineCache&) = delete;
  LineCache& operator=(const LineCache&) = delete;

  // The line found before for `offset` in the object whose build id
  // starts with id0, id1 (the bytes as in memory); null when none is kept.
  const std::pair<std::string, int>* find(uint64_t id0, uint64_t id1, uint64_t offset);
  // Keeps a line found now (a file name holding a newline is not kept).
  void add(uint64_t id0, uint64_t id1, uint64_t offset, const std::string& file, int line);

  // Whether the directory is in use (false after a refusal or an error).
  bool usable();
  const std::string& dir() const { return dir_; }

 private:
  struct IdHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& id) const {
      return static_cast<size_t>(id.first ^ (id.second * 0x9e3779b97f4a7c15ull));
    }
  };
  struct Object {
    std::unordered_map<uint64_t, std::pair<std::string, int>> lines;  // by offset
    UniqueFd out;                                                     // appended to; opened at the first add
    bool read_only = false;                                           // its file was refused: not written either
  };

  Object& object(uint64_t id0, uint64_t id1);
  void load(Object& o, const std::string& name);
  void off(const std::string& why);

  std::string dir_;
  bool opened_ = false;
  UniqueFd dirfd_;
  std::unordered_map<std::pair<uint64_t, uint64_t>, Object, IdHash> objects_;
};

}  // namespace vmatrace
