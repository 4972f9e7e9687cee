#include "output/printer.h"

#include <cinttypes>
#include <unordered_map>

#include "output/appender.h"

#include "core/syscall_names.h"
#include "core/pmap.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"

namespace vmatrace {
namespace {


const char* event_name(const DecodedRecord& rec) {
  switch (rec.type) {
    case VMAT_EV_SYSCALL: return syscall_name(rec.sys.sys);
    case VMAT_EV_FAULT: return "fault";
    case VMAT_EV_FORK: return "fork";
    case VMAT_EV_EXEC: return "exec";
    case VMAT_EV_EXIT: return "exit";
    case VMAT_EV_VMA_SNAPSHOT: return "exec_vma";
    case VMAT_REC_LAYOUT: return "layout";
    case VMAT_REC_LOSS: return "lost";
    case VMAT_REC_NOTE: return "note";
    case VMAT_REC_FILE_DELETED: return "file_deleted";
  }
  return "unknown";
}

bool failed(int64_t ret) { return ret < 0 && ret >= -4095; }

// Flag names repeat endlessly: decode each distinct value once.
template <typename F>
const std::string& cached(std::unordered_map<uint64_t, std::string>& cache, uint64_t v, F fn) {
  auto it = cache.find(v);
  if (it == cache.end()) it = cache.emplace(v, fn(v)).first;
  return it->second;
}

void size_arg(Appender& a, uint64_t len) {
  a.dec(len) << " [" << human_size(len) << ']';
}

std::string vma_name(const Vma& v, const Layout* l) {
  return l ? maps_name(*l, v) : (v.path.empty() ? v.special : v.path);
}

void vma_text(Appender& a, const Vma& v, const Layout* l) {
  a.xdigits(v.start) << '-';
  a.xdigits(v.end) << ' ' << v.perms() << ' ';
  std::string name = vma_name(v, l);
  if (name.empty()) a << "anon";
  else a << escape_text(name);
}

void vma_json(Appender& a, const Vma& v, const Layout* l) {
  a << "{\"start\":\"";
  a.hex(v.start) << "\",\"end\":\"";
  a.hex(v.end) << "\",\"perms\":\"" << v.perms() << "\",\"offset\":";
  a.dec(v.is_file() ? v.pgoff * 4096 : 0) << ",\"dev\":\"";
  a.xdigits0(v.dev >> 20, 2) << ':';
  a.xdigits0(v.dev & 0xfffff, 2) << "\",\"inode\":";
  a.dec(v.ino) << ",\"path\":\"" << escape_json(vma_name(v, l)) << "\"}";
}

void change_vma_text(Appender& a, const Vma& v, const Layout* l) {
  // id 0: a split piece that never stood on its own
  if (v.id) a << '#', a.dec(v.id) << ' ';
  else a << "#- ";
  vma_text(a, v, l);
}

void change_vma_json(Appender& a, const Vma& v, const Layout* l) {
  a << "{\"id\":";
  a.dec(v.id) << ',';
  std::string one;
  Appender b(one);
  vma_json(b, v, l);
  a << std::string_view(one).substr(1);
}

void change_list_json(Appender& a, const std::vector<Vma>& vs, const Layout* l) {
  a << '[';
  for (size_t i = 0; i < vs.size(); i++) {
    if (i) a << ',';
    change_vma_json(a, vs[i], l);
  }
  a << ']';
}

// One line per change, under the event that caused it.
// A change of vm_flags in place shows which bits came and went: most
// (VM_LOCKED from mlock, VM_DONTCOPY from madvise, ...) are not in perms.
bool flags_delta(const VmaChange& c, uint64_t& set, uint64_t& cleared) {
  if (c.kind != VmaChangeKind::kFlags || c.from.size() != 1 || c.to.size() != 1) return false;
  set = c.to[0].flags & ~c.from[0].flags;
  cleared = c.from[0].flags & ~c.to[0].flags;
  return set || cleared;
}

void changes_text(Appender& a, const Applied& applied, const Layout* l) {
  for (const auto& c : applied.changes) {
    a << "      " << vma_change_kind_name(c.kind) << ' ';
    for (size_t i = 0; i < c.from.size(); i++) {
      if (i) a << " + ";
      change_vma_text(a, c.from[i], l);
    }
    if (!c.from.empty() && !c.to.empty()) a << " -> ";
    for (size_t i = 0; i < c.to.size(); i++) {
      if (i) a << ", ";
      change_vma_text(a, c.to[i], l);
    }
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared)) {
      a << " [";
      if (set) a << '+' << decode_vm_flags(set);
      if (cleared) a << (set ? " -" : "-") << decode_vm_flags(cleared);
      a << ']';
    }
    if (c.source != VmaChangeSource::kInference) a << "  (" << vma_change_source_name(c.source) << ')';
    a << '\n';
  }
}

void changes_json(Appender& a, const Applied& applied, const Layout* l) {
  if (applied.changes.empty()) return;
  a << ",\"cause\":\"" << applied.cause << "\",\"changes\":[";
  for (size_t i = 0; i < applied.changes.size(); i++) {
    const auto& c = applied.changes[i];
    if (i) a << ',';
    a << "{\"kind\":\"" << vma_change_kind_name(c.kind) << "\",\"from\":";
    change_list_json(a, c.from, l);
    a << ",\"to\":";
    change_list_json(a, c.to, l);
    if (uint64_t set = 0, cleared = 0; flags_delta(c, set, cleared))
      a << ",\"flags_set\":\"" << (set ? decode_vm_flags(set) : "") << "\",\"flags_cleared\":\""
        << (cleared ? decode_vm_flags(cleared) : "") << '"';
    a << ",\"source\":\"" << vma_change_source_name(c.source) << "\"}";
  }
  a << ']';
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

void Printer::emit(std::string_view s) {
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

void Printer::derived(const DecodedRecord& rec, std::string_view event, std::string_view text,
                      std::string_view json_fields) {
  if (!opts_.events || !wanted(rec)) return;
  if (base_ts_ == 0) base_ts_ = rec.hdr.ts;
  std::string& s = line_;
  s.clear();
  Appender a(s);
  if (opts_.format == OutputFormat::kJson) {
    a << "{\"ts\":";
    a.dec(rec.hdr.ts) << ",\"pid\":";
    a.dec(rec.hdr.pid) << ",\"tid\":";
    a.dec(rec.hdr.tid) << ",\"comm\":\"" << escape_json(rec.comm) << "\",\"event\":\"" << event << '"' << json_fields
                       << "}\n";
  } else {
    uint64_t rel = rec.hdr.ts >= base_ts_ ? rec.hdr.ts - base_ts_ : 0;
    a.decw(rel / 1000000000, 5) << '.';
    a.dec0((rel / 1000) % 1000000, 6) << ' ';
    a.dec(rec.hdr.pid) << '/';
    a.dec(rec.hdr.tid) << ' ' << escape_text(rec.comm) << ' ' << event << ' ' << text << '\n';
  }
  emit(s);
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
  std::string& s = line_;
  s.clear();
  Appender a(s);
  uint64_t rel = rec.hdr.ts >= base_ts_ ? rec.hdr.ts - base_ts_ : 0;
  a.decw(rel / 1000000000, 5) << '.';
  a.dec0((rel / 1000) % 1000000, 6) << ' ';
  a.dec(rec.hdr.pid) << '/';
  a.dec(rec.hdr.tid) << ' ' << escape_text(rec.comm) << ' ';
  switch (rec.type) {
    case VMAT_EV_SYSCALL: {
      const auto& e = rec.sys;
      const auto* g = e.args;
      switch (e.sys) {
        case VMAT_SYS_MMAP:
          a << "mmap(";
          if (g[0]) a.hex(g[0]);
          else a << "NULL";
          a << ", ";
          size_arg(a, g[1]);
          a << ", " << cached(prot_cache_, g[2], prot_names) << ", " << cached(flag_cache_, g[3], mmap_flag_names)
            << ", ";
          a.sdec(static_cast<int>(g[4])) << ", ";
          a.hex(g[5]) << ')';
          break;
        case VMAT_SYS_MUNMAP:
          a << "munmap(";
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          a << ')';
          break;
        case VMAT_SYS_BRK:
          a << "brk(";
          if (g[0]) a.hex(g[0]);
          else a << "NULL";
          a << ')';
          break;
        case VMAT_SYS_MREMAP:
          a << "mremap(";
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          a << ", ";
          size_arg(a, g[2]);
          a << ", " << mremap_flag_names(g[3]);
          if (g[3] & 2) a << ", ", a.hex(g[4]);
          a << ')';
          break;
        case VMAT_SYS_MPROTECT:
          a << "mprotect(";
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          a << ", " << cached(prot_cache_, g[2], prot_names) << ')';
          break;
        case VMAT_SYS_MADVISE:
          a << "madvise(";
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          a << ", " << madvise_name(g[2]) << ')';
          break;
        case VMAT_SYS_MLOCK:
        case VMAT_SYS_MUNLOCK:
        case VMAT_SYS_MLOCK2:
          a << syscall_name(e.sys) << '(';
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          if (e.sys == VMAT_SYS_MLOCK2) a << ", " << mlock2_flag_names(g[2]);
          a << ')';
          break;
        case VMAT_SYS_MLOCKALL:
          a << "mlockall(" << mlockall_flag_names(g[0]) << ')';
          break;
        case VMAT_SYS_MUNLOCKALL:
          a << "munlockall()";
          break;
        case VMAT_SYS_PKEY_MPROTECT:
          a << "pkey_mprotect(";
          a.hex(g[0]) << ", ";
          size_arg(a, g[1]);
          a << ", " << cached(prot_cache_, g[2], prot_names) << ", ";
          a.sdec(static_cast<int>(g[3])) << ')';
          break;
        case VMAT_SYS_SHMAT:
          a << "shmat(";
          a.sdec(static_cast<int>(g[0])) << ", ";
          if (g[1]) a.hex(g[1]);
          else a << "NULL";
          a << ", " << shmat_flag_names(g[2]) << ')';
          break;
        case VMAT_SYS_SHMDT:
          a << "shmdt(";
          a.hex(g[0]) << ')';
          break;
      }
      if (failed(e.ret)) {
        a << " = -1 " << errno_name(static_cast<int>(-e.ret));
      } else if (e.sys == VMAT_SYS_MMAP || e.sys == VMAT_SYS_MREMAP || e.sys == VMAT_SYS_BRK ||
                 e.sys == VMAT_SYS_SHMAT) {
        a << " = ";
        a.hex(static_cast<uint64_t>(e.ret));
      } else {
        a << " = ";
        a.sdec(e.ret);
      }
      break;
    }
    case VMAT_EV_FAULT: {
      const auto& f = rec.fault;
      a << "fault(";
      a.hex(f.addr) << ", " << fault_access(f.error_code) << " ip=";
      a.hex(f.ip);
      if (f.flags & VMAT_FAULT_KERNEL_MODE) a << " kernel";
      a << ')';
      if (applied.fault_vma) a << " in ", vma_text(a, *applied.fault_vma, layout);
      else if (applied.applied) a << " in no VMA";
      break;
    }
    case VMAT_EV_FORK:
      a << ((rec.fork.flags & VMAT_FORK_THREAD) ? "thread -> " : "fork -> ");
      a.dec((rec.fork.flags & VMAT_FORK_THREAD) ? rec.fork.child_tid : rec.fork.child_pid);
      if (rec.fork.flags & VMAT_FORK_SHARED_VM) a << " (shared mm)";
      break;
    case VMAT_EV_EXEC:
      a << "exec(" << escape_text(rec.path) << ')';
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      a << "exec layout: ";
      a.dec(rec.snap.seq) << " VMAs (kernel walk)";
      break;
    case VMAT_EV_EXIT:
      a << ((rec.exit.flags & VMAT_EXIT_GROUP) ? "exit " : "thread_exit ");
      a.sdec(rec.exit.exit_code);
      if (rec.exit.lost) a << " (lost ", a.dec(rec.exit.lost) << " events)";
      break;
    case VMAT_REC_LAYOUT:
      a << "layout: ";
      a.dec(rec.layout->vmas.size()) << " VMAs from /proc (" << layout_reason_name(rec.layout->reason) << ')';
      break;
    case VMAT_REC_FILE_DELETED:
      a << "mapped file deleted: " << escape_text(rec.file_deleted->path) << " (";
      a.xdigits0(rec.file_deleted->dev >> 20, 2) << ':';
      a.xdigits0(rec.file_deleted->dev & 0xfffff, 2) << ' ';
      a.dec(rec.file_deleted->ino) << ')';
      break;
    case VMAT_REC_LOSS:
      a << "LOST ";
      a.dec(rec.loss->lost) << " events (total ";
      a.dec(rec.loss->lost_total) << "); layout resynchronised from /proc";
      break;
  }
  if (applied.layout_changed && !applied.change.result.empty()) {
    a << (applied.stack_grew ? "  stack grew => " : "  => ");
    bool first = true;
    for (const auto& v : applied.change.result) {
      if (!first) a << ", ";
      vma_text(a, v, layout);
      first = false;
    }
  } else if (applied.layout_changed && rec.type == VMAT_EV_SYSCALL &&
             (rec.sys.sys == VMAT_SYS_MUNMAP || rec.sys.sys == VMAT_SYS_SHMDT)) {
    a << "  => unmapped";
  }
  a << '\n';
  changes_text(a, applied, layout);
  emit(s);
}

void Printer::json(const DecodedRecord& rec, const Applied& applied, const Layout* layout) {
  std::string& s = line_;
  s.clear();
  Appender a(s);
  a << "{\"ts\":";
  a.dec(rec.hdr.ts) << ",\"pid\":";
  a.dec(rec.hdr.pid) << ",\"tid\":";
  a.dec(rec.hdr.tid) << ",\"comm\":\"" << escape_json(rec.comm) << "\",\"event\":\"" << event_name(rec) << '"';
  switch (rec.type) {
    case VMAT_EV_SYSCALL: {
      const auto& e = rec.sys;
      const auto* g = e.args;
      switch (e.sys) {
        case VMAT_SYS_MMAP:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]) << ",\"prot\":\"" << cached(prot_cache_, g[2], prot_names) << "\",\"flags\":\""
                      << cached(flag_cache_, g[3], mmap_flag_names) << "\",\"fd\":";
          a.sdec(static_cast<int>(g[4])) << ",\"offset\":";
          a.dec(g[5]);
          break;
        case VMAT_SYS_MUNMAP:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]);
          break;
        case VMAT_SYS_BRK:
          a << ",\"addr\":\"";
          a.hex(g[0]) << '"';
          break;
        case VMAT_SYS_MREMAP:
          a << ",\"old_addr\":\"";
          a.hex(g[0]) << "\",\"old_len\":";
          a.dec(g[1]) << ",\"new_len\":";
          a.dec(g[2]) << ",\"flags\":\"" << mremap_flag_names(g[3]) << '"';
          if (g[3] & 2) a << ",\"new_addr\":\"", a.hex(g[4]) << '"';
          break;
        case VMAT_SYS_MPROTECT:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]) << ",\"prot\":\"" << cached(prot_cache_, g[2], prot_names) << '"';
          break;
        case VMAT_SYS_MADVISE:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]) << ",\"advice\":\"" << madvise_name(g[2]) << '"';
          break;
        case VMAT_SYS_MLOCK:
        case VMAT_SYS_MUNLOCK:
        case VMAT_SYS_MLOCK2:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]);
          if (e.sys == VMAT_SYS_MLOCK2) a << ",\"flags\":\"" << mlock2_flag_names(g[2]) << '"';
          break;
        case VMAT_SYS_MLOCKALL:
          a << ",\"flags\":\"" << mlockall_flag_names(g[0]) << '"';
          break;
        case VMAT_SYS_PKEY_MPROTECT:
          a << ",\"addr\":\"";
          a.hex(g[0]) << "\",\"len\":";
          a.dec(g[1]) << ",\"prot\":\"" << cached(prot_cache_, g[2], prot_names) << "\",\"pkey\":";
          a.sdec(static_cast<int>(g[3]));
          break;
        case VMAT_SYS_SHMAT:
          a << ",\"shmid\":";
          a.sdec(static_cast<int>(g[0])) << ",\"addr\":\"";
          a.hex(g[1]) << "\",\"flags\":\"" << shmat_flag_names(g[2]) << '"';
          break;
        case VMAT_SYS_SHMDT:
          a << ",\"addr\":\"";
          a.hex(g[0]) << '"';
          break;
      }
      if (failed(e.ret)) {
        a << ",\"error\":\"" << errno_name(static_cast<int>(-e.ret)) << '"';
      } else if (e.sys == VMAT_SYS_MMAP || e.sys == VMAT_SYS_MREMAP || e.sys == VMAT_SYS_BRK ||
                 e.sys == VMAT_SYS_SHMAT) {
        a << ",\"ret\":\"";
        a.hex(static_cast<uint64_t>(e.ret)) << '"';
      } else {
        a << ",\"ret\":";
        a.sdec(e.ret);
      }
      a << ",\"duration_ns\":";
      a.dec(rec.hdr.ts >= e.enter_ts ? rec.hdr.ts - e.enter_ts : 0);
      break;
    }
    case VMAT_EV_FAULT: {
      const auto& f = rec.fault;
      a << ",\"addr\":\"";
      a.hex(f.addr) << "\",\"ip\":\"";
      a.hex(f.ip) << "\",\"access\":\"" << fault_access(f.error_code) << "\",\"kernel_mode\":"
                  << ((f.flags & VMAT_FAULT_KERNEL_MODE) ? "true" : "false") << ",\"vma\":";
      if (applied.fault_vma) vma_json(a, *applied.fault_vma, layout);
      else a << "null";
      if (applied.stack_grew) a << ",\"stack_grew\":true";
      break;
    }
    case VMAT_EV_FORK:
      a << ",\"child_pid\":";
      a.dec(rec.fork.child_pid) << ",\"child_tid\":";
      a.dec(rec.fork.child_tid) << ",\"thread\":" << ((rec.fork.flags & VMAT_FORK_THREAD) ? "true" : "false")
                                << ",\"shared_vm\":" << ((rec.fork.flags & VMAT_FORK_SHARED_VM) ? "true" : "false")
                                << ",\"followed\":" << ((rec.fork.flags & VMAT_FORK_TRACED) ? "true" : "false");
      break;
    case VMAT_EV_EXEC:
      a << ",\"filename\":\"" << escape_json(rec.path) << '"';
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      a << ",\"vmas\":";
      a.dec(rec.snap.seq) << ",\"source\":\"kernel\"";
      break;
    case VMAT_EV_EXIT:
      a << ",\"exit_code\":";
      a.sdec(rec.exit.exit_code) << ",\"group\":" << ((rec.exit.flags & VMAT_EXIT_GROUP) ? "true" : "false")
                                 << ",\"lost\":";
      a.dec(rec.exit.lost);
      break;
    case VMAT_REC_LAYOUT:
      a << ",\"vmas\":";
      a.dec(rec.layout->vmas.size()) << ",\"reason\":\"" << layout_reason_name(rec.layout->reason) << '"';
      break;
    case VMAT_REC_FILE_DELETED:
      a << ",\"path\":\"" << escape_json(rec.file_deleted->path) << "\",\"dev\":\"";
      a.xdigits0(rec.file_deleted->dev >> 20, 2) << ':';
      a.xdigits0(rec.file_deleted->dev & 0xfffff, 2) << "\",\"inode\":";
      a.dec(rec.file_deleted->ino);
      break;
    case VMAT_REC_LOSS:
      a << ",\"lost\":";
      a.dec(rec.loss->lost) << ",\"lost_total\":";
      a.dec(rec.loss->lost_total) << ",\"resync\":true";
      break;
  }
  if (applied.layout_changed && rec.type == VMAT_EV_SYSCALL) {
    a << ",\"result\":[";
    bool first = true;
    for (const auto& v : applied.change.result) {
      if (!first) a << ',';
      vma_json(a, v, layout);
      first = false;
    }
    a << ']';
  }
  changes_json(a, applied, layout);
  a << "}\n";
  emit(s);
}

std::string Printer::maps_block(const ProcessState& p, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::string s = "{\"event\":\"maps\",\"pid\":" + std::to_string(p.pid) + ",\"comm\":\"" + escape_json(p.comm) +
                    "\",\"maps\":\"";
    s += escape_json(format_proc_maps(p.layout));
    s += "\"}\n";
    return s;
  }
  std::string s = "# maps of " + std::to_string(p.pid) + " (" + escape_text(p.comm) + ")" +
                  (p.seeded ? "" : " [layout unknown]") + "\n";
  s += format_proc_maps(p.layout);
  return s;
}

void Printer::on_process_end(const ProcessState& p) {
  if (!opts_.maps_at_end && !opts_.pmap_at_end) return;
  if (opts_.pid && p.pid != *opts_.pid) return;
  if (opts_.maps_at_end) buf_ += maps_block(p, opts_.format);
  if (opts_.pmap_at_end && p.seeded) {
    buf_ += "# pmap of " + std::to_string(p.pid) + " (" + escape_text(p.comm) + ")\n";
    buf_ += pmap_text(p.layout, p.exe);
  }
  flush();
}

}  // namespace vmatrace
