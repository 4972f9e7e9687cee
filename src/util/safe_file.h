#pragma once
// Every file vmatrace writes is created here, the way recordings always
// were: atomically (O_EXCL), never through a symbolic link (O_NOFOLLOW, and
// --force refuses a link instead of following or replacing it), and an
// existing file is replaced only when the user said --force. vmatrace runs
// as root, often in shared directories such as /tmp: a link planted at the
// output path must never redirect the write.

#include <sys/types.h>

#include <string>

#include "util/unique_fd.h"

namespace vmatrace {

struct OutputFileOptions {
  bool force = false;  // replace an existing regular file (never a link)
  mode_t mode = 0600;  // recordings and pages may hold stacks and paths
  // Names the option that overrides a refusal, for the error message.
  const char* force_flag = "--force";
};

// Creates `path` for writing. Throws UserError with one line naming the
// problem and what to do: "<path> exists; use --force to overwrite",
// "<path> is a symbolic link; refusing to write through it", ...
UniqueFd create_output_file(const std::string& path, const OutputFileOptions& opts = {});

// What create_output_file() would refuse, said now without creating
// anything (a command that works a while before it writes): a symbolic
// link (with or without force), an existing path without force, and with
// force what it would not replace.
void check_output_path(const std::string& path, const OutputFileOptions& opts = {});

// Writes all of `data` to `fd` (retrying short writes and EINTR); throws
// UserError naming `path` on failure.
void write_all(int fd, const void* data, size_t size, const std::string& path);

}  // namespace vmatrace
