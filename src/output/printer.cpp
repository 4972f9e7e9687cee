#include "output/printer.h"

#include <cinttypes>

#include "core/decode.h"
#include "core/proc_maps.h"

namespace vmatrace {
namespace {

const char* sys_name(uint32_t sys) {
  switch (sys) {
    case VMAT_SYS_MMAP: return "mmap";
    case VMAT_SYS_MUNMAP: return "munmap";
    case VMAT_SYS_BRK: return "brk";
    case VMAT_SYS_MREMAP: return "mremap";
    case VMAT_SYS_MPROTECT: return "mprotect";
    case VMAT_SYS_MADVISE: return "madvise";
  }
  return "?";
}

const char* event_name(const DecodedRecord& rec) {
  switch (rec.type) {
    case VMAT_EV_SYSCALL: return sys_name(rec.sys.sys);
    case VMAT_EV_FAULT: return "fault";
    case VMAT_EV_FORK: return "fork";
    case VMAT_EV_EXEC: return "exec";
    case VMAT_EV_EXIT: return "exit";
    case VMAT_EV_VMA_SNAPSHOT: return "exec_vma";
    case VMAT_REC_LAYOUT: return "layout";
    case VMAT_REC_LOSS: return "lost";
    case VMAT_REC_NOTE: return "note";
  }
  return "unknown";
}

bool failed(int64_t ret) { return ret < 0 && ret >= -4095; }

std::string fmt(const char* f, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), f, args...);
  return buf;
}

std::string size_arg(uint64_t len) { return std::to_string(len) + " [" + human_size(len) + "]"; }

std::string vma_text(const Vma& v, const Layout* l) {
  std::string s = fmt("%" PRIx64 "-%" PRIx64 " %s", v.start, v.end, v.perms().c_str());
  std::string name = l ? l->name_of(v) : (v.path.empty() ? v.special : v.path);
  if (!name.empty()) s += " " + escape_text(name);
  else s += " anon";
  return s;
}

std::string vma_json(const Vma& v, const Layout* l) {
  std::string name = l ? l->name_of(v) : (v.path.empty() ? v.special : v.path);
  return fmt("{\"start\":\"0x%" PRIx64 "\",\"end\":\"0x%" PRIx64 "\",\"perms\":\"%s\",\"offset\":%" PRIu64
             ",\"dev\":\"%02x:%02x\",\"inode\":%" PRIu64 ",\"path\":\"",
             v.start, v.end, v.perms().c_str(), v.is_file() ? v.pgoff * 4096 : 0, v.dev >> 20, v.dev & 0xfffff,
             v.ino) +
         escape_json(name) + "\"}";
}

}  // namespace

Printer::Printer(std::FILE* out, PrinterOptions opts) : out_(out), opts_(opts) {}

Printer::~Printer() { flush(); }

void Printer::flush() {
  if (!buf_.empty()) {
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
    buf_.clear();
  }
  std::fflush(out_);
}

void Printer::emit(const std::string& s) {
  buf_ += s;
  printed_++;
  if (buf_.size() > (1 << 16)) {
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
    buf_.clear();
  }
}

bool Printer::wanted(const DecodedRecord& rec) const {
  if (opts_.pid && rec.hdr.pid != *opts_.pid) return false;
  if (opts_.since && rec.hdr.ts < *opts_.since) return false;
  if (opts_.until && rec.hdr.ts > *opts_.until) return false;
  return true;
}

void Printer::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (rec.type == VMAT_REC_NOTE) {
    if (rec.note->key == kNoteSessionStart) base_ts_ = rec.hdr.ts;
    return;
  }
  if (base_ts_ == 0) base_ts_ = rec.hdr.ts;
  // Exec walks are folded into their exec line.
  if (rec.type == VMAT_EV_VMA_SNAPSHOT && !(rec.snap.flags & VMAT_SNAP_LAST)) return;
  if (!opts_.events || !wanted(rec)) return;
  const Layout* layout = proc ? &proc->layout : nullptr;
  if (opts_.format == OutputFormat::kJson) json(rec, applied, layout);
  else text(rec, applied, layout);
}

void Printer::text(const DecodedRecord& rec, const Applied& applied, const Layout* layout) {
  uint64_t rel = rec.hdr.ts >= base_ts_ ? rec.hdr.ts - base_ts_ : 0;
  std::string s = fmt("%5" PRIu64 ".%06" PRIu64 " %u/%u %s ", rel / 1000000000, (rel / 1000) % 1000000,
                      rec.hdr.pid, rec.hdr.tid, escape_text(rec.comm).c_str());
  switch (rec.type) {
    case VMAT_EV_SYSCALL: {
      const auto& e = rec.sys;
      const auto* a = e.args;
      switch (e.sys) {
        case VMAT_SYS_MMAP:
          s += fmt("mmap(%s, %s, %s, %s, %d, %s)", a[0] ? hex(a[0]).c_str() : "NULL", size_arg(a[1]).c_str(),
                   prot_names(a[2]).c_str(), mmap_flag_names(a[3]).c_str(), static_cast<int>(a[4]),
                   hex(a[5]).c_str());
          break;
        case VMAT_SYS_MUNMAP:
          s += fmt("munmap(%s, %s)", hex(a[0]).c_str(), size_arg(a[1]).c_str());
          break;
        case VMAT_SYS_BRK:
          s += fmt("brk(%s)", a[0] ? hex(a[0]).c_str() : "NULL");
          break;
        case VMAT_SYS_MREMAP:
          s += fmt("mremap(%s, %s, %s, %s", hex(a[0]).c_str(), size_arg(a[1]).c_str(), size_arg(a[2]).c_str(),
                   mremap_flag_names(a[3]).c_str());
          if (a[3] & 2) s += ", " + hex(a[4]);
          s += ")";
          break;
        case VMAT_SYS_MPROTECT:
          s += fmt("mprotect(%s, %s, %s)", hex(a[0]).c_str(), size_arg(a[1]).c_str(), prot_names(a[2]).c_str());
          break;
        case VMAT_SYS_MADVISE:
          s += fmt("madvise(%s, %s, %s)", hex(a[0]).c_str(), size_arg(a[1]).c_str(), madvise_name(a[2]).c_str());
          break;
      }
      if (failed(e.ret)) {
        s += " = -1 " + errno_name(static_cast<int>(-e.ret));
      } else if (e.sys == VMAT_SYS_MMAP || e.sys == VMAT_SYS_MREMAP || e.sys == VMAT_SYS_BRK) {
        s += " = " + hex(static_cast<uint64_t>(e.ret));
      } else {
        s += " = " + std::to_string(e.ret);
      }
      break;
    }
    case VMAT_EV_FAULT: {
      const auto& f = rec.fault;
      s += fmt("fault(%s, %s ip=%s%s)", hex(f.addr).c_str(), fault_access(f.error_code).c_str(), hex(f.ip).c_str(),
               (f.flags & VMAT_FAULT_KERNEL_MODE) ? " kernel" : "");
      if (applied.fault_vma) s += " in " + vma_text(*applied.fault_vma, layout);
      else if (applied.applied) s += " in no VMA";
      break;
    }
    case VMAT_EV_FORK:
      s += fmt("%s -> %u%s", (rec.fork.flags & VMAT_FORK_THREAD) ? "thread" : "fork",
               (rec.fork.flags & VMAT_FORK_THREAD) ? rec.fork.child_tid : rec.fork.child_pid,
               (rec.fork.flags & VMAT_FORK_SHARED_VM) ? " (shared mm)" : "");
      break;
    case VMAT_EV_EXEC:
      s += "exec(" + escape_text(rec.path) + ")";
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      s += fmt("exec layout: %u VMAs (kernel walk)", rec.snap.seq);
      break;
    case VMAT_EV_EXIT:
      s += fmt("%s %d", (rec.exit.flags & VMAT_EXIT_GROUP) ? "exit" : "thread_exit", rec.exit.exit_code);
      if (rec.exit.lost) s += fmt(" (lost %" PRIu64 " events)", rec.exit.lost);
      break;
    case VMAT_REC_LAYOUT:
      s += fmt("layout: %zu VMAs from /proc (%s)", rec.layout->vmas.size(),
               std::string(layout_reason_name(rec.layout->reason)).c_str());
      break;
    case VMAT_REC_LOSS:
      s += fmt("LOST %" PRIu64 " events (total %" PRIu64 "); layout resynchronised from /proc", rec.loss->lost,
               rec.loss->lost_total);
      break;
  }
  if (applied.layout_changed && !applied.change.result.empty()) {
    s += applied.stack_grew ? "  stack grew => " : "  => ";
    bool first = true;
    for (const auto& v : applied.change.result) {
      if (!first) s += ", ";
      s += vma_text(v, layout);
      first = false;
    }
  } else if (applied.layout_changed && rec.type == VMAT_EV_SYSCALL && rec.sys.sys == VMAT_SYS_MUNMAP) {
    s += "  => unmapped";
  }
  s += '\n';
  emit(s);
}

void Printer::json(const DecodedRecord& rec, const Applied& applied, const Layout* layout) {
  std::string s = fmt("{\"ts\":%" PRIu64 ",\"pid\":%u,\"tid\":%u,\"comm\":\"", rec.hdr.ts, rec.hdr.pid, rec.hdr.tid);
  s += escape_json(rec.comm);
  s += "\",\"event\":\"";
  s += event_name(rec);
  s += "\"";
  switch (rec.type) {
    case VMAT_EV_SYSCALL: {
      const auto& e = rec.sys;
      const auto* a = e.args;
      switch (e.sys) {
        case VMAT_SYS_MMAP:
          s += fmt(",\"addr\":\"%s\",\"len\":%" PRIu64 ",\"prot\":\"%s\",\"flags\":\"%s\",\"fd\":%d,\"offset\":%" PRIu64,
                   hex(a[0]).c_str(), a[1], prot_names(a[2]).c_str(), mmap_flag_names(a[3]).c_str(),
                   static_cast<int>(a[4]), a[5]);
          break;
        case VMAT_SYS_MUNMAP:
          s += fmt(",\"addr\":\"%s\",\"len\":%" PRIu64, hex(a[0]).c_str(), a[1]);
          break;
        case VMAT_SYS_BRK:
          s += fmt(",\"addr\":\"%s\"", hex(a[0]).c_str());
          break;
        case VMAT_SYS_MREMAP:
          s += fmt(",\"old_addr\":\"%s\",\"old_len\":%" PRIu64 ",\"new_len\":%" PRIu64 ",\"flags\":\"%s\"",
                   hex(a[0]).c_str(), a[1], a[2], mremap_flag_names(a[3]).c_str());
          if (a[3] & 2) s += ",\"new_addr\":\"" + hex(a[4]) + "\"";
          break;
        case VMAT_SYS_MPROTECT:
          s += fmt(",\"addr\":\"%s\",\"len\":%" PRIu64 ",\"prot\":\"%s\"", hex(a[0]).c_str(), a[1],
                   prot_names(a[2]).c_str());
          break;
        case VMAT_SYS_MADVISE:
          s += fmt(",\"addr\":\"%s\",\"len\":%" PRIu64 ",\"advice\":\"%s\"", hex(a[0]).c_str(), a[1],
                   madvise_name(a[2]).c_str());
          break;
      }
      if (failed(e.ret)) s += ",\"error\":\"" + errno_name(static_cast<int>(-e.ret)) + "\"";
      else if (e.sys == VMAT_SYS_MMAP || e.sys == VMAT_SYS_MREMAP || e.sys == VMAT_SYS_BRK)
        s += ",\"ret\":\"" + hex(static_cast<uint64_t>(e.ret)) + "\"";
      else s += fmt(",\"ret\":%" PRId64, e.ret);
      s += fmt(",\"duration_ns\":%" PRIu64, rec.hdr.ts >= e.enter_ts ? rec.hdr.ts - e.enter_ts : 0);
      break;
    }
    case VMAT_EV_FAULT: {
      const auto& f = rec.fault;
      s += fmt(",\"addr\":\"%s\",\"ip\":\"%s\",\"access\":\"%s\",\"kernel_mode\":%s", hex(f.addr).c_str(),
               hex(f.ip).c_str(), fault_access(f.error_code).c_str(),
               (f.flags & VMAT_FAULT_KERNEL_MODE) ? "true" : "false");
      s += ",\"vma\":" + (applied.fault_vma ? vma_json(*applied.fault_vma, layout) : std::string("null"));
      if (applied.stack_grew) s += ",\"stack_grew\":true";
      break;
    }
    case VMAT_EV_FORK:
      s += fmt(",\"child_pid\":%u,\"child_tid\":%u,\"thread\":%s,\"shared_vm\":%s,\"followed\":%s", rec.fork.child_pid,
               rec.fork.child_tid, (rec.fork.flags & VMAT_FORK_THREAD) ? "true" : "false",
               (rec.fork.flags & VMAT_FORK_SHARED_VM) ? "true" : "false",
               (rec.fork.flags & VMAT_FORK_TRACED) ? "true" : "false");
      break;
    case VMAT_EV_EXEC:
      s += ",\"filename\":\"" + escape_json(rec.path) + "\"";
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      s += fmt(",\"vmas\":%u,\"source\":\"kernel\"", rec.snap.seq);
      break;
    case VMAT_EV_EXIT:
      s += fmt(",\"exit_code\":%d,\"group\":%s,\"lost\":%" PRIu64, rec.exit.exit_code,
               (rec.exit.flags & VMAT_EXIT_GROUP) ? "true" : "false", rec.exit.lost);
      break;
    case VMAT_REC_LAYOUT:
      s += fmt(",\"vmas\":%zu,\"reason\":\"%s\"", rec.layout->vmas.size(),
               std::string(layout_reason_name(rec.layout->reason)).c_str());
      break;
    case VMAT_REC_LOSS:
      s += fmt(",\"lost\":%" PRIu64 ",\"lost_total\":%" PRIu64 ",\"resync\":true", rec.loss->lost,
               rec.loss->lost_total);
      break;
  }
  if (applied.layout_changed && rec.type == VMAT_EV_SYSCALL) {
    s += ",\"result\":[";
    bool first = true;
    for (const auto& v : applied.change.result) {
      if (!first) s += ",";
      s += vma_json(v, layout);
      first = false;
    }
    s += "]";
  }
  s += "}\n";
  emit(s);
}

std::string Printer::maps_block(const ProcessState& p, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::string s = fmt("{\"event\":\"maps\",\"pid\":%u,\"comm\":\"", p.pid) + escape_json(p.comm) + "\",\"maps\":\"";
    s += escape_json(p.layout.proc_maps());
    s += "\"}\n";
    return s;
  }
  std::string s = fmt("# maps of %u (", p.pid) + escape_text(p.comm) + ")" +
                  (p.seeded ? "" : " [layout unknown]") + "\n";
  s += p.layout.proc_maps();
  return s;
}

void Printer::on_process_end(const ProcessState& p) {
  if (!opts_.maps_at_end) return;
  if (opts_.pid && p.pid != *opts_.pid) return;
  buf_ += maps_block(p, opts_.format);
  flush();
}

}  // namespace vmatrace
