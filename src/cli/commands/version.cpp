// `vmatrace --version`: what a bug report needs to name the build exactly.
#include <bpf/libbpf.h>

#include <string>

#include "cli/commands/commands.h"
#include "version_info.h"  // generated at build time by cmake/VersionInfo.cmake

namespace vmatrace {

std::string version_text() {
  // The libbpf that is loaded (the shared library's own answer), which may
  // be newer than the headers vmatrace was built against.
  return std::string("vmatrace ") + VMATRACE_VERSION + "\ncommit " + VMATRACE_GIT_COMMIT + "\nlibbpf " +
         std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()) + " (built against " +
         std::to_string(LIBBPF_MAJOR_VERSION) + "." + std::to_string(LIBBPF_MINOR_VERSION) + ")\nbpf object sha256 " +
         VMATRACE_BPF_OBJECT_SHA256;
}

}  // namespace vmatrace
