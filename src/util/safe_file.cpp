#include "util/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/errors.h"

namespace vmatrace {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw UserError(what + ": " + std::strerror(err) + " (choose a writable path)");
}

std::string link_refusal(const std::string& path) {
  return path + " is a symbolic link; refusing to write through it (remove it or choose another path)";
}

// --force: unlink the old regular file, then create anew with O_EXCL. The
// lstat checks only choose the error or allow the unlink; the O_EXCL|
// O_NOFOLLOW open below is what guarantees no link is ever followed, even
// if one is planted between the unlink and the open.
void remove_for_force(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail("cannot write " + path, errno);
  }
  if (S_ISLNK(st.st_mode)) throw UserError(link_refusal(path));
  if (!S_ISREG(st.st_mode))
    throw UserError(path + " exists and is not a regular file; refusing to overwrite it (choose another path)");
  if (st.st_uid != ::geteuid() && st.st_uid != 0)
    throw UserError(path + " is owned by uid " + std::to_string(st.st_uid) +
                    "; refusing to overwrite it (choose another path)");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail("cannot remove " + path, errno);
}

}  // namespace

UniqueFd create_output_file(const std::string& path, const OutputFileOptions& opts) {
  if (path.empty()) throw UserError("empty output file name");
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  if (opts.force) remove_for_force(path);
  int fd = ::open(path.c_str(), kFlags, opts.mode);
  if (fd >= 0) return UniqueFd(fd);
  const int err = errno;
  struct stat st {};
  if (err == ELOOP || (err == EEXIST && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)))
    throw UserError(link_refusal(path));
  if (err == EEXIST) throw UserError(path + " exists; use " + opts.force_flag + " to overwrite");
  fail("cannot write " + path, err);
}

void check_output_path(const std::string& path, const OutputFileOptions& opts) {
  if (path.empty()) throw UserError("empty output file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // absent (or unreadable: the create says why)
  if (S_ISLNK(st.st_mode)) throw UserError(link_refusal(path));
  if (!opts.force) throw UserError(path + " exists; use " + opts.force_flag + " to overwrite");
  if (!S_ISREG(st.st_mode))
    throw UserError(path + " exists and is not a regular file; refusing to overwrite it (choose another path)");
  if (st.st_uid != ::geteuid() && st.st_uid != 0)
    throw UserError(path + " is owned by uid " + std::to_string(st.st_uid) +
                    "; refusing to overwrite it (choose another path)");
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError("writing " + path + " failed: " + std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace vmatrace
