#include "sym/debuginfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "sym/build_id.h"
#include "util/hex.h"
#include "util/text.h"

namespace vmatrace {
namespace {

// A server failed (unreachable, timed out): symbols come from local files
// for the rest of the run, after one warning.
std::atomic<bool> g_debuginfod_failed{false};

std::string dir_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash));
}

// The .gnu_debuglink file, by name: next to the binary, in its .debug/,
// then under each absolute directory of the search path followed by the
// binary's directory (/usr/lib/debug/usr/bin/ls.debug). Taken only when
// its build id is the binary's (what the link's CRC guards against: a
// stale file).
int find_by_debuglink(Dwfl_Module* mod, const DebuginfoSearch& search, const char* modname, const char* file_name,
                      const char* debuglink, char** debuginfo_file_name) {
  if (!debuglink || !*debuglink || !file_name) return -1;
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  const int len = dwfl_module_build_id(mod, &bits, &vaddr);
  if (len <= 0) return -1;
  const std::string want = hex_bytes(bits, static_cast<size_t>(len));
  const std::string here = dir_of(file_name);
  std::vector<std::string> candidates = {here + "/" + debuglink, here + "/.debug/" + debuglink};
  const std::string seen_as = dir_of(modname ? modname : file_name);
  std::string_view rest = search.path;
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (!dir.empty() && dir[0] == '/') candidates.push_back(std::string(dir) + seen_as + "/" + debuglink);
  }
  for (const auto& c : candidates) {
    if (c == file_name || read_build_id(c) != want) continue;
    const int fd = ::open(c.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    *debuginfo_file_name = ::strdup(c.c_str());
    return fd;
  }
  return -1;
}

}  // namespace

int find_debuginfo(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base, const char* file_name,
                   const char* debuglink_file, GElf_Word debuglink_crc, char** debuginfo_file_name) {
  const auto* search = static_cast<const DebuginfoSearch*>(*userdata);
  // By build id under each directory of the search path (no server asked).
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file, debuglink_crc,
                                        debuginfo_file_name);
  if (fd >= 0 || !search) return fd;
  fd = find_by_debuglink(mod, *search, modname, file_name, debuglink_file, debuginfo_file_name);
  if (fd >= 0 || !search->debuginfod || g_debuginfod_failed.load()) return fd;
  const char* urls = std::getenv("DEBUGINFOD_URLS");
  if (!urls || !*urls) {
    if (!g_debuginfod_failed.exchange(true))
      std::fprintf(stderr, "vmatrace: --debuginfod: DEBUGINFOD_URLS is not set; debug info from local files only\n");
    return fd;
  }
  // libdw's own search again, ending with the servers.
  fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file, debuglink_crc,
                                    debuginfo_file_name);
  // libdebuginfod answers a negative errno: -ENOENT is "no server has it".
  if (fd < -1 && fd != -ENOENT && !g_debuginfod_failed.exchange(true))
    std::fprintf(stderr, "vmatrace: debuginfod %s: %s; debug info from local files only from now on\n",
                 escape_text(urls).c_str(), std::strerror(-fd));
  return fd;
}

void set_debuginfo_search(Dwfl_Module* mod, const DebuginfoSearch* search) {
  void** userdata = nullptr;
  if (dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) && userdata)
    *userdata = const_cast<DebuginfoSearch*>(search);
}

void bound_debuginfod_wait() {
  // libdebuginfod waits 90 s by default, and tries each request 3 times.
  ::setenv("DEBUGINFOD_TIMEOUT", "5", /*overwrite=*/0);
  ::setenv("DEBUGINFOD_RETRY_LIMIT", "0", /*overwrite=*/0);
}

}  // namespace vmatrace
