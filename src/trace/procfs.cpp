#include "trace/procfs.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>

#include <cctype>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/proc_maps.h"
#include "util/errors.h"

namespace vmatrace {

LayoutRecord read_proc_layout_record(pid_t pid) {
  ProcSnapshot snap = read_proc_snapshot(pid);
  LayoutRecord l;
  l.start_brk = snap.start_brk;
  l.brk = snap.brk;
  l.start_stack = snap.start_stack;
  l.vmas = std::move(snap.vmas);
  return l;
}

std::vector<pid_t> proc_descendants(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo{pid};
  while (!todo.empty()) {
    const std::string task_dir = "/proc/" + std::to_string(todo.back()) + "/task";
    todo.pop_back();
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(task_dir.c_str()), ::closedir);
    if (!dir) continue;  // gone meanwhile
    while (const dirent* e = ::readdir(dir.get())) {
      if (e->d_name[0] == '.') continue;
      std::ifstream children(task_dir + "/" + e->d_name + "/children");
      for (pid_t c; children >> c;) {
        out.push_back(c);
        todo.push_back(c);
      }
    }
  }
  return out;
}

std::optional<std::string> read_gate_vma_line() {
  std::istringstream in(read_text_file("/proc/self/maps"));
  std::string line;
  while (std::getline(in, line))
    if (line.find("[vsyscall]") != std::string::npos) return line;
  return std::nullopt;
}

namespace {

// The last number of a "Key:\t1234\t5" line of a status file, and how many there were.
std::pair<uint32_t, int> last_of(const std::string& status, std::string_view key) {
  size_t at = status.find(std::string("\n") + std::string(key));
  if (at == std::string::npos) return {0, 0};
  at += key.size() + 1;
  const size_t eol = status.find('\n', at);
  std::istringstream in(status.substr(at, eol == std::string::npos ? std::string::npos : eol - at));
  uint32_t last = 0;
  int n = 0;
  for (uint32_t v; in >> v; n++) last = v;
  return {last, n};
}

// The inode of /proc/PID/ns/pid (which PID namespace pid is in); 0: gone.
ino_t pid_ns_of(pid_t pid) {
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace

std::optional<NsIdsRecord> read_ns_ids(pid_t pid, pid_t tid) {
  std::string status;
  try {
    status = read_text_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  } catch (const std::exception&) {
    return std::nullopt;
  }
  // A kernel without the lines (before 4.1) or /proc's own namespace: no ids.
  auto [nspid, levels] = last_of(status, "NStgid:");
  auto [nstid, tid_levels] = last_of(status, "NSpid:");
  if (levels < 2 || tid_levels < 2) return NsIdsRecord{};
  return NsIdsRecord{nspid, nstid};
}

pid_t resolve_ns_pid(pid_t member, pid_t nspid) {
  const ino_t ns = member > 0 ? pid_ns_of(member) : 0;
  if (!ns)
    throw UserError("--pidns " + std::to_string(member) +
                    ": no process with that pid (give the host pid of any process in the namespace)");
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), ::closedir);
  if (!dir) throw UserError("cannot read /proc: is procfs mounted?");
  while (const dirent* e = ::readdir(dir.get())) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    const pid_t pid = std::atoi(e->d_name);
    if (pid_ns_of(pid) != ns) continue;
    std::string status;
    try {
      status = read_text_file("/proc/" + std::to_string(pid) + "/status");
    } catch (const std::exception&) {
      continue;  // gone meanwhile
    }
    auto [last, levels] = last_of(status, "NStgid:");
    if (levels == 0) last = static_cast<uint32_t>(pid);  // no NStgid line: one namespace
    if (last == static_cast<uint32_t>(nspid)) return pid;
  }
  throw UserError("no process with pid " + std::to_string(nspid) + " in the PID namespace of pid " +
                  std::to_string(member) + " (its /proc/" + std::to_string(member) + "/ns/pid)");
}

uint64_t cgroup_v2_id(const std::string& path) {
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) throw UserError("--cgroup " + path + ": " + std::strerror(errno));
  if (fs.f_type != CGROUP2_SUPER_MAGIC)
    throw UserError("--cgroup " + path +
                    ": not a cgroup v2 directory (give one under a cgroup2 mount, e.g. /sys/fs/cgroup/...; "
                    "mount one with: mount -t cgroup2 none DIR)");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UserError("--cgroup " + path + ": not a cgroup directory");
  return st.st_ino;
}

std::vector<pid_t> cgroup_members(const std::string& path) {
  std::vector<pid_t> out;
  // The cgroup first, then its descendants (each a directory with its own
  // cgroup.procs); one that goes away while we read is skipped.
  auto read_procs = [&](const std::filesystem::path& dir, bool required) {
    std::ifstream in(dir / "cgroup.procs");
    if (!in) {
      if (required) throw UserError("--cgroup " + path + ": cannot read its cgroup.procs: " + std::strerror(errno));
      return;
    }
    for (pid_t p; in >> p;) out.push_back(p);
  };
  read_procs(path, true);
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) read_procs(it->path(), false);
  return out;
}

}  // namespace vmatrace
