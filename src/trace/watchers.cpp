#include "trace/watchers.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "sym/build_id.h"

namespace vmatrace {

std::vector<DeletedFile> DeletedFileWatch::find(const Processor& proc) {
  std::vector<DeletedFile> files;
  std::set<std::pair<uint32_t, uint64_t>> seen;
  std::map<uint32_t, Known> now;  // ended processes drop out
  for (const auto* p : proc.processes()) {
    auto it = by_pid_.find(p->pid);
    Known k = it != by_pid_.end() ? std::move(it->second) : Known{};
    if (it == by_pid_.end() || k.generation != p->layout.file_generation()) {
      k.generation = p->layout.file_generation();
      k.files.clear();
      std::set<std::pair<uint32_t, uint64_t>> mine;
      p->layout.for_each_vma([&](const Vma& v) {
        if (!v.is_file() || v.deleted || v.path.empty() || v.path[0] != '/') return;
        if (mine.insert({v.dev, v.ino}).second) k.files.push_back({p->pid, v.dev, v.ino, v.path});
      });
    }
    for (const auto& f : k.files)
      if (seen.insert({f.dev, f.ino}).second) files.push_back(f);
    now[p->pid] = std::move(k);
  }
  by_pid_ = std::move(now);
  std::vector<DeletedFile> gone;
  for (auto& f : files) {
    struct stat st;
    // Seen from the process's own root (containers); once it has exited
    // (records are handled after the fact), from ours.
    std::string root = "/proc/" + std::to_string(f.pid) + "/root";
    const bool through_root = ::access(root.c_str(), F_OK) == 0;
    int rc = ::stat(through_root ? (root + f.path).c_str() : f.path.c_str(), &st);
    // It exited between the two looks (a fork worker): its root is gone,
    // not the file. Look from ours.
    if (rc != 0 && through_root && ::access(root.c_str(), F_OK) != 0) rc = ::stat(f.path.c_str(), &st);
    bool is_gone;
    if (rc == 0) {
      uint32_t dev = (::major(st.st_dev) << 20) | ::minor(st.st_dev);
      is_gone = dev != f.dev || st.st_ino != f.ino;
    } else {
      is_gone = errno == ENOENT || errno == ENOTDIR;
    }
    if (is_gone) gone.push_back(std::move(f));
  }
  return gone;
}

std::vector<std::string> ObjectNotes::notes_for(const DecodedRecord& d) {
  std::vector<std::string> notes;
  const vmat_vma_info* info = nullptr;
  if (d.type == VMAT_EV_SYSCALL)
    info = &d.sys.vma[0];
  else if (d.type == VMAT_EV_VMA_SNAPSHOT)
    info = &d.snap.vma;
  if (info && (info->state & VMAT_VMA_FILE) && !d.path.empty()) {
    if (auto n = note(d.hdr.pid, info->dev, info->ino, d.path)) notes.push_back(std::move(*n));
  } else if (d.type == VMAT_REC_LAYOUT && d.layout) {
    const std::string root = "/proc/" + std::to_string(d.hdr.pid) + "/root";
    for (const auto& v : d.layout->vmas) {
      if (!v.is_file() || v.deleted || v.path.empty() || v.path[0] != '/' || seen_.count({v.dev, v.ino})) continue;
      // Only regular files: opening a mapped device (/dev/zero, a GPU) to
      // look for a build-id can block or have side effects.
      struct stat st;
      if (::stat((root + v.path).c_str(), &st) != 0 && ::stat(v.path.c_str(), &st) != 0) continue;
      if (!S_ISREG(st.st_mode)) continue;
      if (auto n = note(d.hdr.pid, v.dev, v.ino, v.path)) notes.push_back(std::move(*n));
    }
  }
  return notes;
}

std::optional<std::string> ObjectNotes::note(uint32_t pid, uint32_t dev, uint64_t ino, std::string_view path_view) {
  // Checked first: a file already noted costs no string (this runs per syscall).
  if (!seen_.insert({dev, ino}).second) return std::nullopt;
  const std::string path(path_view);
  auto id = read_build_id("/proc/" + std::to_string(pid) + "/root" + path);
  if (!id) id = read_build_id(path);
  char devino[64];
  std::snprintf(devino, sizeof(devino), "%02x:%02x %llu", dev >> 20, dev & 0xfffff,
                static_cast<unsigned long long>(ino));
  return std::string(devino) + " " + (id ? *id : "-") + " " + path;
}

}  // namespace vmatrace
