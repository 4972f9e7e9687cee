#include "sym/build_id.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <memory>

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
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (ssize_t i = 0; i < n; i++) {
    auto b = static_cast<const unsigned char*>(id)[i];
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

}  // namespace vmatrace
