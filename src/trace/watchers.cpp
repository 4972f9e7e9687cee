#include "trace/watchers.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "sym/build_id.h"

namespace vmatrace {

std::vector<DeletedFile> find_deleted_files(const Processor& proc) {
  std::vector<DeletedFile> files;
  std::set<std::pair<uint32_t, uint64_t>> seen;
  for (const auto* p : proc.processes()) {
    for (const auto& v : p->layout.vmas()) {
      if (!v.is_file() || v.deleted || v.path.empty() || v.path[0] != '/') continue;
      if (!seen.insert({v.dev, v.ino}).second) continue;
      files.push_back({p->pid, v.dev, v.ino, v.path});
    }
  }
  std::vector<DeletedFile> gone;
  for (auto& f : files) {
    struct stat st;
    // Seen from the process's own root (containers); once it has exited
    // (records are handled after the fact), from ours.
    std::string root = "/proc/" + std::to_string(f.pid) + "/root";
    std::string where = ::access(root.c_str(), F_OK) == 0 ? root + f.path : f.path;
    bool is_gone;
    if (::stat(where.c_str(), &st) == 0) {
      uint32_t dev = (::major(st.st_dev) << 20) | ::minor(st.st_dev);
      is_gone = dev != f.dev || st.st_ino != f.ino;
    } else {
      is_gone = errno == ENOENT || errno == ENOTDIR;
    }
    if (is_gone) gone.push_back(std::move(f));
  }
  return gone;
}

std::optional<std::string> ObjectNotes::note_for(const DecodedRecord& d) {
  const vmat_vma_info* info = nullptr;
  if (d.type == VMAT_EV_SYSCALL)
    info = &d.sys.vma[0];
  else if (d.type == VMAT_EV_VMA_SNAPSHOT)
    info = &d.snap.vma;
  if (!info || !(info->state & VMAT_VMA_FILE) || d.path.empty()) return std::nullopt;
  if (!seen_.insert({info->dev, info->ino}).second) return std::nullopt;
  std::string path(d.path);
  auto id = read_build_id("/proc/" + std::to_string(d.hdr.pid) + "/root" + path);
  if (!id) id = read_build_id(path);
  char devino[64];
  std::snprintf(devino, sizeof(devino), "%02x:%02x %llu", info->dev >> 20, info->dev & 0xfffff,
                static_cast<unsigned long long>(info->ino));
  return std::string(devino) + " " + (id ? *id : "-") + " " + path;
}

}  // namespace vmatrace
