#include "core/pmap.h"

#include <cinttypes>
#include <cstdio>
#include <map>

#include "core/proc_maps.h"
#include "util/json.h"

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

std::string pmap_program(const Layout& l, const std::string& program) {
  if (!program.empty()) return program;
  std::string out;
  l.for_each_vma([&](const Vma& v) {
    if (out.empty() && v.is_file() && v.special.empty() && !is_shmem(v)) out = v.path;
  });
  return out;
}

std::string pmap_text(const Layout& l, const std::string& program_in, const RssMap* rss) {
  auto vmas = l.vmas();
  const std::string program = pmap_program(l, program_in);
  std::string out;
  char buf[512];
  if (rss)
    std::snprintf(buf, sizeof(buf), "%-16s %10s %10s %10s %10s %-4s %-19s %-3s %s\n", "Address", "Kbytes", "Rss",
                  "Anonymous", "Swap", "Perm", "Kind", "Id", "Flags / Name");
  else
    std::snprintf(buf, sizeof(buf), "%-16s %10s %-4s %-19s %-3s %s\n", "Address", "Kbytes", "Perm", "Kind", "Id",
                  "Flags / Name");
  out += buf;
  struct Total {
    uint64_t bytes = 0, count = 0;
    Residency res;
  };
  std::map<VmaKind, Total> totals;
  uint64_t all = 0;
  Residency all_res;
  const Vma* prev = nullptr;
  std::string prev_name;
  for (const auto& v : vmas) {
    std::string name = maps_name(l, v);
    VmaKind k = classify_vma(v, name, program, prev, prev_name);
    if (rss) {
      const Residency r = vma_residency(*rss, v);
      std::snprintf(buf, sizeof(buf),
                    "%016" PRIx64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %-4s %-19s #%-3" PRIu64
                    " %s",
                    v.start, (v.end - v.start) / 1024, r.rss / 1024, r.anon / 1024, r.swap / 1024, v.perms().c_str(),
                    vma_kind_name(k), v.id, decode_vm_flags(v.flags).c_str());
      totals[k].res += r;
      all_res += r;
    } else {
      std::snprintf(buf, sizeof(buf), "%016" PRIx64 " %10" PRIu64 " %-4s %-19s #%-3" PRIu64 " %s", v.start,
                    (v.end - v.start) / 1024, v.perms().c_str(), vma_kind_name(k), v.id,
                    decode_vm_flags(v.flags).c_str());
    }
    out += buf;
    if (!name.empty()) out += "  " + name;
    out += '\n';
    totals[k].bytes += v.end - v.start;
    totals[k].count++;
    all += v.end - v.start;
    prev = &v;
    prev_name = std::move(name);
  }
  auto total_line = [&](const char* what, uint64_t bytes, uint64_t count, const Residency& r) {
    std::snprintf(buf, sizeof(buf), "  %-19s %10" PRIu64 " KiB in %" PRIu64 " VMA%s", what, bytes / 1024, count,
                  count == 1 ? "" : "s");
    out += buf;
    if (rss) {
      std::snprintf(buf, sizeof(buf), "; Rss %" PRIu64 " KiB, Anonymous %" PRIu64 " KiB, Swap %" PRIu64 " KiB",
                    r.rss / 1024, r.anon / 1024, r.swap / 1024);
      out += buf;
    }
    out += '\n';
  };
  out += "totals by kind:\n";
  for (const auto& [k, t] : totals) total_line(vma_kind_name(k), t.bytes, t.count, t.res);
  total_line("total", all, vmas.size(), all_res);
  return out;
}

std::string pmap_rss_json(uint32_t pid, const std::string& comm, uint64_t ts, const Layout& l,
                          const std::string& program_in, const RssMap& rss, uint64_t kernel_rss,
                          const std::optional<KernelRss>& kernel) {
  const std::string program = pmap_program(l, program_in);
  std::string out;
  JsonWriter w(out);
  w.begin_object().kv("pid", pid).kv("comm", comm).kv("ts", ts);
  Residency all;
  uint64_t bytes = 0;
  l.for_each_vma([&](const Vma& v) {
    all += vma_residency(rss, v);
    bytes += v.end - v.start;
  });
  w.kv("size", bytes).kv("rss", all.rss).kv("anon", all.anon).kv("swap", all.swap).kv("kernel_rss", kernel_rss);
  if (kernel) {
    w.key("kernel").begin_object().kv("rss", kernel->rss()).kv("anon", kernel->anon).kv("file", kernel->file);
    w.kv("shmem", kernel->shmem).kv("swap", kernel->swap).end_object();
  }
  w.key("vmas").begin_array();
  const Vma* prev = nullptr;
  std::string prev_name;
  auto vmas = l.vmas();
  for (const auto& v : vmas) {
    std::string name = maps_name(l, v);
    const VmaKind k = classify_vma(v, name, program, prev, prev_name);
    const Residency r = vma_residency(rss, v);
    char start[24], end[24];
    std::snprintf(start, sizeof(start), "0x%" PRIx64, v.start);
    std::snprintf(end, sizeof(end), "0x%" PRIx64, v.end);
    w.begin_object().kv("start", start).kv("end", end).kv("size", v.end - v.start).kv("perms", v.perms());
    w.kv("kind", vma_kind_name(k)).kv("name", name).kv("rss", r.rss).kv("anon", r.anon).kv("swap", r.swap);
    w.end_object();
    prev = &v;
    prev_name = std::move(name);
  }
  w.end_array().end_object();
  return out;
}

}  // namespace vmatrace
