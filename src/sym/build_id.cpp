#include "sym/build_id.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <memory>

#include "util/hex.h"
#include "util/unique_fd.h"

namespace vmatrace {

std::optional<std::string> read_build_id(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  elf_version(EV_CURRENT);
  std::unique_ptr<Elf, decltype(&elf_end)> elf(elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr), elf_end);
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return std::nullopt;
  const void* id = nullptr;
  ssize_t n = dwelf_elf_gnu_build_id(elf.get(), &id);
  if (n <= 0 || !id) return std::nullopt;
  return hex_bytes(id, static_cast<size_t>(n));
}

}  // namespace vmatrace
