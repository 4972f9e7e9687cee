#pragma once
// The host path of a file that a process in another mount namespace (or
// under another root) maps: the path it sees, carried through its mount
// table to the file system's own path and back out through the tracer's.
//
// /proc/PID/mountinfo lists each mount's device, the directory of its file
// system that it shows ("root") and where the process sees it ("mount
// point", relative to its root). A path the process sees lies under its
// longest visible mount point; under that mount it is ROOT + rest in the
// file system. The tracer's own mountinfo then gives a mount of the same
// device whose root holds that directory, and the host path is its mount
// point + what is left. Pure text in, text out (unit-tested); the live
// side (MountPaths) reads the tables and checks the answer with stat().

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace vmatrace {

struct MountEntry {
  uint32_t major = 0, minor = 0;
  std::string root;         // the file system's directory this mount shows
  std::string mount_point;  // where it is seen, relative to the reader's root
};

// The lines of a /proc/PID/mountinfo, in order (later mounts hide earlier
// ones at the same mount point). Octal escapes (\040, \011, \012, \134)
// are undone. Lines that do not parse are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// Where `path` (absolute, as a process with mount table `ns` sees it) is
// seen through mount table `host`; nullopt when no mount of `host` shows
// that directory of that file system. Several host mounts may show it
// (bind mounts): the one whose root is the longest prefix, then the first
// listed.
std::optional<std::string> host_path_of(const std::vector<MountEntry>& ns, const std::vector<MountEntry>& host,
                                        std::string_view path);

// The live side: for a traced process whose mount namespace or root is not
// the tracer's, the host path of a file it maps, checked to be the same
// file (device and inode) by stat(). Mount tables are read once per
// namespace and root, and again when a path is not found in them (a mount
// made since).
class MountPaths {
 public:
  // Whether process `pid` sees another file tree than the tracer: another
  // mount namespace, or another root. Cached per pid until forget(pid)
  // (the Session forgets a process at its exec and its exit).
  bool sees_other_tree(pid_t pid);
  // The host path of `path` (as `pid` sees it) when it differs from it and
  // the file there is (dev, ino) (kernel dev_t encoding, major << 20 |
  // minor); nullopt otherwise (same path, not found, no longer there).
  std::optional<std::string> host_path(pid_t pid, std::string_view path, uint32_t dev, uint64_t ino);
  // The same, but only the first time that file of that file tree is asked
  // about (each file is looked up once per tree, found or not): the caller
  // says it once.
  std::optional<std::string> first_host_path(pid_t pid, std::string_view path, uint32_t dev, uint64_t ino);
  void forget(pid_t pid) { procs_.erase(pid); }

 private:
  struct Tree {
    uint64_t mnt_ns = 0;
    std::string root;  // readlink of /proc/PID/root
    bool operator<(const Tree& o) const { return std::tie(mnt_ns, root) < std::tie(o.mnt_ns, o.root); }
  };
  struct ProcTree {
    bool other = false;
    Tree tree;
  };
  const std::vector<MountEntry>& table_of(pid_t pid, const Tree& tree, bool reread);

  std::map<pid_t, ProcTree> procs_;
  std::map<Tree, std::vector<MountEntry>> tables_;
  std::set<std::tuple<Tree, uint32_t, uint64_t>> asked_;  // (tree, dev, ino) looked up
  std::optional<std::vector<MountEntry>> host_;
};

}  // namespace vmatrace
