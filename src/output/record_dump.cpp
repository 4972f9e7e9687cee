#include "output/record_dump.h"

#include <cinttypes>
#include <cstdio>

#include "core/kernel_view.h"
#include "core/record_types.h"

namespace vmatrace {
namespace {

std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), f, args...);
  return buf;
}

std::string info(const vmat_vma_info& v) {
  if (!(v.state & VMAT_VMA_VALID)) return "-";
  return fmt("%" PRIx64 "-%" PRIx64 " flags=%#" PRIx64 " pgoff=%#" PRIx64 " dev=%u ino=%" PRIu64, v.start, v.end,
             v.flags, v.pgoff, v.dev, v.ino);
}

// " maple_tree [index, last] <- key=K VMA" or "... cleared": one store.
std::string store(uint32_t source, uint64_t index, uint64_t last, uint64_t key, const vmat_vma_info& vma) {
  const auto src = vma_change_source_name(vma_change_source_of(source));
  if (key) return fmt(" %s [%#" PRIx64 ", %#" PRIx64 "] <- key=%016" PRIx64 " ", src, index, last, key) + info(vma);
  return fmt(" %s [%#" PRIx64 ", %#" PRIx64 "] cleared", src, index, last);
}

}  // namespace

std::string dump_record(const DecodedRecord& r) {
  std::string s = fmt("%" PRIu64 " %u/%u %s", r.hdr.ts, r.hdr.pid, r.hdr.tid, record_type_name(r.type));
  switch (r.type) {
    case VMAT_EV_SYSCALL:
      s += fmt(" sys=%u ret=%" PRId64 " args=%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64 " enter_ts=%" PRIu64,
               r.sys.sys, static_cast<int64_t>(r.sys.ret), r.sys.args[0], r.sys.args[1], r.sys.args[2], r.sys.args[3],
               r.sys.enter_ts);
      s += " vma0=" + info(r.sys.vma[0]) + " vma1=" + info(r.sys.vma[1]);
      // Stores the record carries (VMAT_EV_SYSCALL_STORES), made before it.
      for (size_t i = 0; i < r.stores.size(); i++) {
        const vmat_vma_store st = r.stores[i];
        s += " store" + store(r.stores.source(), st.index, st.last, st.vma_key, st.vma) + ";";
      }
      break;
    case VMAT_EV_FAULT:
      s += fmt(" addr=%#" PRIx64 " ip=%#" PRIx64 " error_code=%#x flags=%#x", r.fault.addr, r.fault.ip,
               r.fault.error_code, r.fault.flags);
      break;
    case VMAT_EV_RSS_STAT: {
      const auto& e = r.rss_stat;
      s += fmt(" member=%u delta=%" PRId64 " flags=%#x addr=%#" PRIx64 " pages=%" PRId64 ",%" PRId64 ",%" PRId64
               ",%" PRId64,
               e.member, static_cast<int64_t>(e.delta), e.flags, e.addr, static_cast<int64_t>(e.pages[0]),
               static_cast<int64_t>(e.pages[1]), static_cast<int64_t>(e.pages[2]), static_cast<int64_t>(e.pages[3]));
      break;
    }
    case VMAT_EV_VMA_KERNEL:
      s += store(r.vmak.source, r.vmak.index, r.vmak.last, r.vmak.vma_key, r.vmak.vma);
      break;
    case VMAT_REC_NOTE:
      if (r.note) s += " " + r.note->key + "=" + r.note->value;
      break;
    case VMAT_REC_LAYOUT:
      if (r.layout) s += fmt(" %zu VMAs", r.layout->vmas.size());
      break;
    case VMAT_REC_RSS:
      if (r.rss) {
        uint64_t present = 0;
        for (const auto& run : r.rss->runs)
          if (run.flags & VMAT_RSS_PRESENT) present += run.end - run.start;
        s += fmt(" %zu ranges%s%s, %zu runs, %" PRIu64 " KiB resident, VmRSS %" PRIu64 " KiB, scan %" PRIu64 " us",
                 r.rss->ranges.size(), (r.rss->flags & VMAT_RSS_SCAN_FULL) ? " (full)" : "",
                 (r.rss->flags & VMAT_RSS_SCAN_PAGEMAP) ? " (pagemap)" : "", r.rss->runs.size(), present / 1024,
                 r.rss->kernel_rss / 1024, r.rss->scan_ns / 1000);
      }
      break;
    case VMAT_REC_STACK_FRAMES:
      s += fmt(" enter_ts=%" PRIu64 " frames=%u", r.frames.enter_ts, r.frames.nframes);
      break;
    case VMAT_REC_JIT_MAP:
      if (r.jit_map) s += fmt(" %zu names", r.jit_map->code.size());
      break;
    case VMAT_REC_HOST_PATH:
      if (r.host_path) s += " " + r.host_path->path + " is " + r.host_path->host_path + " on the host";
      break;
    default:
      break;
  }
  if (!r.path.empty()) s += " path=" + std::string(r.path);
  return s;
}

}  // namespace vmatrace
