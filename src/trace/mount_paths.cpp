#include "trace/mount_paths.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

namespace vmatrace {
namespace {

std::string unescape_octal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const auto d = s.substr(i + 1, 3);
      if (std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>((d[0] - '0') * 64 + (d[1] - '0') * 8 + (d[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Whether `path` is `dir` or below it (whole components).
bool is_under(std::string_view path, std::string_view dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

// `dir` + the part of `path` below `prefix` (is_under(path, prefix)).
std::string rebase(std::string_view path, std::string_view prefix, std::string_view dir) {
  std::string_view rest = prefix == "/" ? path : path.substr(prefix.size());
  if (rest.empty() || rest == "/") return std::string(dir);
  if (dir == "/") return std::string(rest);
  std::string out(dir);
  out += rest;
  return out;
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    // mount_id parent_id major:minor root mount_point options ...
    std::array<std::string_view, 5> f{};
    size_t n = 0;
    while (n < f.size() && !line.empty()) {
      const size_t sp = line.find(' ');
      f[n++] = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    }
    if (n < f.size()) continue;
    const auto colon = f[2].find(':');
    if (colon == std::string_view::npos) continue;
    MountEntry e;
    const auto maj = f[2].substr(0, colon), min = f[2].substr(colon + 1);
    if (std::from_chars(maj.data(), maj.data() + maj.size(), e.major).ec != std::errc{} ||
        std::from_chars(min.data(), min.data() + min.size(), e.minor).ec != std::errc{})
      continue;
    e.root = unescape_octal(f[3]);
    e.mount_point = unescape_octal(f[4]);
    if (e.root.empty() || e.root[0] != '/' || e.mount_point.empty() || e.mount_point[0] != '/') continue;
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

// Every host path of `path`, best first (see host_path_of).
std::vector<std::string> host_path_candidates(const std::vector<MountEntry>& ns, const std::vector<MountEntry>& host,
                                              std::string_view path) {
  if (path.empty() || path[0] != '/') return {};
  // The mount the process sees the path through: the longest mount point
  // above it, the last listed of those (it hides the ones below it).
  const MountEntry* m = nullptr;
  for (const auto& e : ns)
    if (is_under(path, e.mount_point) && (!m || e.mount_point.size() >= m->mount_point.size())) m = &e;
  if (!m) return {};
  const std::string in_fs = rebase(path, m->mount_point, m->root);
  std::vector<const MountEntry*> shows;
  for (const auto& e : host)
    if (e.major == m->major && e.minor == m->minor && is_under(in_fs, e.root)) shows.push_back(&e);
  std::stable_sort(shows.begin(), shows.end(),
                   [](const MountEntry* a, const MountEntry* b) { return a->root.size() > b->root.size(); });
  std::vector<std::string> out;
  for (const auto* e : shows) out.push_back(rebase(in_fs, e->root, e->mount_point));
  return out;
}

}  // namespace

std::optional<std::string> host_path_of(const std::vector<MountEntry>& ns, const std::vector<MountEntry>& host,
                                        std::string_view path) {
  auto all = host_path_candidates(ns, host, path);
  if (all.empty()) return std::nullopt;
  return std::move(all.front());
}

bool MountPaths::sees_other_tree(pid_t pid) {
  auto it = procs_.find(pid);
  if (it != procs_.end()) return it->second.other;
  const std::string proc = "/proc/" + std::to_string(pid);
  struct stat own {
  }, theirs{};
  ProcTree t;
  if (stat("/proc/self/ns/mnt", &own) == 0 && stat((proc + "/ns/mnt").c_str(), &theirs) == 0) {
    t.tree.mnt_ns = theirs.st_ino;
    std::array<char, 4096> buf{};
    const ssize_t n = readlink((proc + "/root").c_str(), buf.data(), buf.size() - 1);
    t.tree.root = n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "/";
    t.other = theirs.st_ino != own.st_ino || t.tree.root != "/";
  }
  // A process that is gone (or whose ns cannot be read) counts as ours:
  // its paths are shown as they are, with no host path.
  return procs_.emplace(pid, std::move(t)).first->second.other;
}

const std::vector<MountEntry>& MountPaths::table_of(pid_t pid, const Tree& tree, bool reread) {
  auto it = tables_.find(tree);
  if (it != tables_.end() && !reread) return it->second;
  auto text = read_text("/proc/" + std::to_string(pid) + "/mountinfo");
  auto parsed = text ? parse_mountinfo(*text) : std::vector<MountEntry>{};
  if (it == tables_.end()) return tables_.emplace(tree, std::move(parsed)).first->second;
  if (text) it->second = std::move(parsed);  // a process gone keeps the table read before
  return it->second;
}

std::optional<std::string> MountPaths::host_path(pid_t pid, std::string_view path, uint32_t dev, uint64_t ino) {
  if (path.empty() || path[0] != '/' || !sees_other_tree(pid)) return std::nullopt;
  const Tree tree = procs_.at(pid).tree;
  const uint32_t want_major = dev >> 20, want_minor = dev & ((1u << 20) - 1);
  for (bool reread : {false, true}) {
    if (!host_ || reread) {
      auto text = read_text("/proc/self/mountinfo");
      if (text) host_ = parse_mountinfo(*text);
    }
    if (!host_) return std::nullopt;
    for (const auto& candidate : host_path_candidates(table_of(pid, tree, reread), *host_, path)) {
      struct stat st {};
      if (stat(candidate.c_str(), &st) != 0) continue;
      if (major(st.st_dev) != want_major || minor(st.st_dev) != want_minor || st.st_ino != ino) continue;
      if (candidate == path) return std::nullopt;  // the same path on the host
      return candidate;
    }
  }
  return std::nullopt;
}

std::optional<std::string> MountPaths::first_host_path(pid_t pid, std::string_view path, uint32_t dev, uint64_t ino) {
  if (!sees_other_tree(pid)) return std::nullopt;
  if (!asked_.emplace(procs_.at(pid).tree, dev, ino).second) return std::nullopt;
  return host_path(pid, path, dev, ino);
}

}  // namespace vmatrace
