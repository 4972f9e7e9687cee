#include "core/pmap.h"

#include <cinttypes>
#include <cstdio>
#include <map>

#include "core/proc_maps.h"

namespace vmatrace {

const char* vma_kind_name(VmaKind k) {
  switch (k) {
    case VmaKind::kProgramText:
      return "program text";
    case VmaKind::kProgramData:
      return "program data";
    case VmaKind::kProgramBss:
      return "program bss";
    case VmaKind::kHeap:
      return "heap";
    case VmaKind::kStack:
      return "stack";
    case VmaKind::kLibCode:
      return "shared-library code";
    case VmaKind::kLibData:
      return "shared-library data";
    case VmaKind::kAnon:
      return "anonymous mmap";
    case VmaKind::kFile:
      return "file mmap";
    case VmaKind::kShm:
      return "shared memory";
    case VmaKind::kSpecial:
      return "vdso/vvar";
  }
  return "?";
}

namespace {

bool is_library(const std::string& path) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  auto so = base.find(".so");
  return so != std::string::npos && (so + 3 == base.size() || base[so + 3] == '.' || base[so + 3] == ' ');
}

// shmem-backed: MAP_SHARED|MAP_ANONYMOUS (shmem_zero_setup() names it
// "/dev/zero (deleted)"), SysV shm, memfd, POSIX shm in /dev/shm.
bool is_shmem(const Vma& v) {
  const std::string& p = v.path;
  return p == "/dev/zero" || p.rfind("/SYSV", 0) == 0 || p.rfind("/memfd:", 0) == 0 || p.rfind("/dev/shm/", 0) == 0;
}

}  // namespace

VmaKind classify_vma(const Vma& v, const std::string& name, const std::string& program, const Vma* prev,
                     const std::string& prev_name) {
  if (!v.special.empty()) return VmaKind::kSpecial;
  if (name == "[heap]") return VmaKind::kHeap;
  if (name == "[stack]") return VmaKind::kStack;
  if (v.is_file()) {
    if (is_shmem(v)) return VmaKind::kShm;
    if (!program.empty() && v.path == program)
      return (v.flags & VM_EXEC) ? VmaKind::kProgramText : VmaKind::kProgramData;
    if (is_library(v.path) && !(v.flags & VM_MAYSHARE))
      return (v.flags & VM_EXEC) ? VmaKind::kLibCode : VmaKind::kLibData;
    return VmaKind::kFile;
  }
  if (prev && prev->end == v.start && prev->is_file() && !program.empty() && prev->path == program &&
      (v.flags & VM_WRITE) && prev_name == prev->path)
    return VmaKind::kProgramBss;
  // A library's bss: ld.so maps it anonymous right after the library's
  // writable data (_dl_map_segments() zero-fill).
  if (prev && prev->end == v.start && prev->is_file() && is_library(prev->path) && (prev->flags & VM_WRITE) &&
      (v.flags & VM_WRITE) && !(v.flags & VM_MAYSHARE))
    return VmaKind::kLibData;
  return VmaKind::kAnon;
}

std::string pmap_text(const Layout& l, const std::string& program_in) {
  auto vmas = l.vmas();
  std::string program = program_in;
  if (program.empty()) {
    for (const auto& v : vmas)
      if (v.is_file() && v.special.empty() && !is_shmem(v)) {
        program = v.path;
        break;
      }
  }
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%-16s %10s %-4s %-19s %-3s %s\n", "Address", "Kbytes", "Perm", "Kind", "Id",
                "Flags / Name");
  out += buf;
  struct Total {
    uint64_t bytes = 0, count = 0;
  };
  std::map<VmaKind, Total> totals;
  uint64_t all = 0;
  const Vma* prev = nullptr;
  std::string prev_name;
  for (const auto& v : vmas) {
    std::string name = maps_name(l, v);
    VmaKind k = classify_vma(v, name, program, prev, prev_name);
    std::snprintf(buf, sizeof(buf), "%016" PRIx64 " %10" PRIu64 " %-4s %-19s #%-3" PRIu64 " %s", v.start,
                  (v.end - v.start) / 1024, v.perms().c_str(), vma_kind_name(k), v.id,
                  decode_vm_flags(v.flags).c_str());
    out += buf;
    if (!name.empty()) out += "  " + name;
    out += '\n';
    totals[k].bytes += v.end - v.start;
    totals[k].count++;
    all += v.end - v.start;
    prev = &v;
    prev_name = std::move(name);
  }
  out += "totals by kind:\n";
  for (const auto& [k, t] : totals) {
    std::snprintf(buf, sizeof(buf), "  %-19s %10" PRIu64 " KiB in %" PRIu64 " VMA%s\n", vma_kind_name(k),
                  t.bytes / 1024, t.count, t.count == 1 ? "" : "s");
    out += buf;
  }
  std::snprintf(buf, sizeof(buf), "  %-19s %10" PRIu64 " KiB in %zu VMA%s\n", "total", all / 1024, vmas.size(),
                vmas.size() == 1 ? "" : "s");
  out += buf;
  return out;
}

}  // namespace vmatrace
