#pragma once
// What the live trace looks for beside the records, written into the
// stream as records of their own so that replay shows the same: mapped
// files that were deleted, and the build-ids of mapped objects.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/processor.h"
#include "core/records.h"

namespace vmatrace {

struct DeletedFile {
  uint32_t pid = 0, dev = 0;
  uint64_t ino = 0;
  std::string path;
};

// /proc prints " (deleted)" after the path of a mapped file that was
// unlinked; nothing in the syscalls we trace says so (the unlink may come
// from any process), so look: a path that no longer leads to the same
// inode, seen from the process's own root, is deleted. Each file once, the
// first process mapping it names it.
class DeletedFileWatch {
 public:
  std::vector<DeletedFile> find(const Processor& proc);

 private:
  // One layout's distinct named files, as of its file_generation(): a
  // layout whose file mappings did not change since the last poll is not
  // walked again (tens of thousands of anonymous VMAs, ten polls a second).
  struct Known {
    uint64_t generation = 0;
    std::vector<DeletedFile> files;
  };
  std::map<uint32_t, Known> by_pid_;
};

// A recording carries what offline symbolization needs: each mapped file's
// build-id, noted once per (dev, inode) when first seen.
class ObjectNotes {
 public:
  // The values of the "object" notes ("dev:ino build-id path") for the
  // files `d` maps that were not seen before: the file of a syscall's or an
  // exec walk's VMA, or every regular file of a layout read from /proc (at
  // attach, after a loss, at exec without the kernel's walk).
  std::vector<std::string> notes_for(const DecodedRecord& d);

 private:
  std::optional<std::string> note(uint32_t pid, uint32_t dev, uint64_t ino, std::string_view path);
  std::set<std::pair<uint32_t, uint64_t>> seen_;  // (dev, ino) noted
};

}  // namespace vmatrace
