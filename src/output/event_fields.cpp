#include "output/event_fields.h"

#include "core/record_types.h"
#include "core/syscall_names.h"
#include "vmatrace/abi/syscalls.h"

namespace vmatrace {
namespace {

// ---- the syscall table, as the encoders need it -------------------------------

struct ArgSpec {
  const char* name = nullptr;  // the JSON member
  int kind = 0;                // VMAT_ARGK_*
};

struct SyscallSpec {
  bool known = false;
  int ret = VMAT_RET_INT;
  std::array<ArgSpec, 6> args{};
  int nargs = 0;
};

template <typename... A>
constexpr SyscallSpec spec_of(int ret, A... args) {
  return SyscallSpec{true, ret, {args...}, static_cast<int>(sizeof...(A))};
}

constexpr std::array<SyscallSpec, VMAT_SYS_MAX> kSyscalls = [] {
  std::array<SyscallSpec, VMAT_SYS_MAX> t{};
#define VMAT_ARG(json_name, kind) \
  ArgSpec { #json_name, kind }
#define VMAT_SPEC_ROW(name, NAME, id, nr, nargs, required, ret, range, ...) \
  t[id] = spec_of(ret __VA_OPT__(, ) __VA_ARGS__);
  VMAT_SYSCALLS(VMAT_SPEC_ROW)
#undef VMAT_SPEC_ROW
#undef VMAT_ARG
  return t;
}();

#define VMAT_NARGS_CHECK(name_, NAME_, id_, nr_, nargs_, ...) \
  static_assert(kSyscalls[id_].nargs == nargs_, "syscalls.h: " #name_ ": nargs and its VMAT_ARGs disagree");
VMAT_SYSCALLS(VMAT_NARGS_CHECK)
#undef VMAT_NARGS_CHECK

constexpr uint64_t kMremapFixed = 2;

bool failed(int64_t ret) { return ret < 0 && ret >= -4095; }

std::string name_of(int kind, uint64_t v) {
  switch (kind) {
    case VMAT_ARGK_PROT:
      return prot_names(v);
    case VMAT_ARGK_MMAP_FLAGS:
      return mmap_flag_names(v);
    case VMAT_ARGK_MREMAP_FLAGS:
      return mremap_flag_names(v);
    case VMAT_ARGK_MADVICE:
      return madvise_name(v);
    case VMAT_ARGK_MLOCK2_FLAGS:
      return mlock2_flag_names(v);
    case VMAT_ARGK_MCL_FLAGS:
      return mlockall_flag_names(v);
    case VMAT_ARGK_SHM_FLAGS:
      return shmat_flag_names(v);
  }
  return errno_name(static_cast<int>(v));
}

}  // namespace

std::string_view EventFields::value_name(int kind, uint64_t v) {
  auto& cache = names_[static_cast<size_t>(kind) % names_.size()];
  auto it = cache.find(v);
  if (it == cache.end()) it = cache.emplace(v, name_of(kind, v)).first;
  return it->second;
}

void EventFields::header(const DecodedRecord& rec, FieldList& out, const NsIdsRecord& ns) {
  out.number(FieldType::kTime, "ts", rec.hdr.ts);
  out.u64("pid", rec.hdr.pid, " ");
  out.u64("tid", rec.hdr.tid, "/");
  if (ns.nspid) {
    out.u64("nspid", ns.nspid, " [ns ");
    out.u64("nstid", ns.nstid, "/");
    out.literal("]");
  }
  out.str("comm", rec.comm, " ");
}

void EventFields::syscall(const DecodedRecord& rec, FieldList& out) {
  const auto& e = rec.sys;
  const SyscallSpec* spec = e.sys < kSyscalls.size() && kSyscalls[e.sys].known ? &kSyscalls[e.sys] : nullptr;
  if (spec) {
    out.name({}, syscall_name(e.sys), " ", kInText);
    if (spec->nargs == 0) out.literal("(");
    uint64_t mremap_flags = 0;
    for (int i = 0; i < spec->nargs; i++) {
      const ArgSpec& arg = spec->args[static_cast<size_t>(i)];
      const uint64_t v = e.args[i];
      const std::string_view text = i == 0 ? "(" : ", ";
      switch (arg.kind) {
        case VMAT_ARGK_PTR:
          out.number(FieldType::kPtr, arg.name, v, text);
          break;
        case VMAT_ARGK_ADDR:
          out.number(FieldType::kHex, arg.name, v, text);
          break;
        case VMAT_ARGK_SIZE:
          out.number(FieldType::kSize, arg.name, v, text);
          break;
        case VMAT_ARGK_INT:
          out.i64(arg.name, static_cast<int>(v), text);
          break;
        case VMAT_ARGK_OFFSET:
          out.number(FieldType::kOffset, arg.name, v, text);
          break;
        case VMAT_ARGK_MREMAP_NEW:
          if (mremap_flags & kMremapFixed) out.number(FieldType::kHex, arg.name, v, text);
          break;
        default:
          if (arg.kind == VMAT_ARGK_MREMAP_FLAGS) mremap_flags = v;
          out.name(arg.name, value_name(arg.kind, v), text);
          break;
      }
    }
    out.literal(")");
  } else {
    out.literal(" ");  // as the printer always showed an unknown syscall: no name, no arguments
  }
  if (failed(e.ret))
    out.name("error", value_name(kErrno, static_cast<uint64_t>(-e.ret)), " = -1 ");
  else if (spec && spec->ret == VMAT_RET_ADDR)
    out.number(FieldType::kHex, "ret", static_cast<uint64_t>(e.ret), " = ");
  else
    out.i64("ret", e.ret, " = ");
  // enter_ts 0: in flight when its process began to be traced (entry unseen).
  out.u64("duration_ns", e.enter_ts && rec.hdr.ts >= e.enter_ts ? rec.hdr.ts - e.enter_ts : 0, {}, kInJson);
}

void EventFields::record(const DecodedRecord& rec, const Applied& applied, const Layout* layout, FieldList& out) {
  out.set_layout(layout);
  header(rec, out, applied.ns);
  out.name("event", rec.type == VMAT_EV_SYSCALL ? syscall_name(rec.sys.sys) : record_type_name(rec.type), {}, kInJson);
  switch (rec.type) {
    case VMAT_EV_SYSCALL:
      syscall(rec, out);
      break;
    case VMAT_EV_FAULT: {
      const auto& f = rec.fault;
      const Vma* vma = applied.fault_vma ? &*applied.fault_vma : nullptr;
      out.number(FieldType::kHex, "addr", f.addr, " fault(");
      out.name({}, fault_access(f.error_code), ", ", kInText);
      out.number(FieldType::kHex, "ip", f.ip, " ip=");
      out.name("access", fault_access(f.error_code), {}, kInJson);
      out.boolean("kernel_mode", f.flags & VMAT_FAULT_KERNEL_MODE, " kernel");
      out.literal(")");
      out.pointer(FieldType::kVma, "vma", vma, {}, kInJson);
      if (vma)
        out.pointer(FieldType::kVma, {}, vma, " in ", kInText);
      else if (applied.applied)
        out.literal(" in no VMA");
      if (applied.stack_grew) out.boolean("stack_grew", true, {}, kInJson);
      break;
    }
    case VMAT_EV_FORK: {
      const bool thread = rec.fork.flags & VMAT_FORK_THREAD;
      out.literal(thread ? " thread -> " : " fork -> ");
      out.u64("child_pid", rec.fork.child_pid, {}, thread ? kInJson : kInBoth);
      out.u64("child_tid", rec.fork.child_tid, {}, thread ? kInBoth : kInJson);
      out.boolean("thread", thread, {}, kInJson);
      out.boolean("shared_vm", rec.fork.flags & VMAT_FORK_SHARED_VM, " (shared mm)");
      out.boolean("followed", rec.fork.flags & VMAT_FORK_TRACED, {}, kInJson);
      break;
    }
    case VMAT_EV_EXEC:
      out.str("filename", rec.path, " exec(");
      out.literal(")");
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      out.u64("vmas", rec.snap.seq, " exec layout: ");
      out.literal(" VMAs (kernel walk)");
      out.name("source", "kernel", {}, kInJson);
      break;
    case VMAT_EV_EXIT: {
      const bool group = rec.exit.flags & VMAT_EXIT_GROUP;
      out.i64("exit_code", rec.exit.exit_code, group ? " exit " : " thread_exit ");
      out.boolean("group", group, {}, kInJson);
      out.u64("lost", rec.exit.lost, " (lost ", rec.exit.lost ? kInBoth : kInJson);
      if (rec.exit.lost) out.literal(" events)");
      break;
    }
    case VMAT_REC_LAYOUT:
      out.u64("vmas", rec.layout->vmas.size(), " layout: ");
      out.name("reason", layout_reason_name(rec.layout->reason), " VMAs from /proc (");
      out.literal(")");
      break;
    case VMAT_REC_FILE_DELETED:
      out.str("path", rec.file_deleted->path, " mapped file deleted: ");
      out.number(FieldType::kDev, "dev", rec.file_deleted->dev, " (");
      out.u64("inode", rec.file_deleted->ino, " ");
      out.literal(")");
      break;
    case VMAT_REC_HOST_PATH:
      out.str("path", rec.host_path->path, " mapped file ");
      out.str("host_path", rec.host_path->host_path, " is ");
      out.literal(" on the host");
      out.number(FieldType::kDev, "dev", rec.host_path->dev, " (");
      out.u64("inode", rec.host_path->ino, " ");
      out.literal(")");
      break;
    case VMAT_REC_LOSS:
      out.u64("lost", rec.loss->lost, " LOST ");
      out.u64("lost_total", rec.loss->lost_total, " events (total ");
      out.literal(rec.loss->unread   ? "); written after tracing stopped: not read"
                  : rec.loss->resync ? "); layout resynchronised from /proc"
                                     : "); found at its exit: no resync");
      out.boolean("resync", rec.loss->resync, {}, kInJson);
      if (rec.loss->unread) out.boolean("unread", true, {}, kInJson);
      if (rec.loss->since_ts) out.u64("since_ts", rec.loss->since_ts, {}, kInJson);
      break;
  }
  const bool syscall = rec.type == VMAT_EV_SYSCALL;
  if (applied.layout_changed && !applied.change.result.empty())
    out.pointer(FieldType::kVmas, "result", &applied.change.result, applied.stack_grew ? "  stack grew => " : "  => ",
                kInText);
  else if (applied.layout_changed && syscall && (rec.sys.sys == VMAT_SYS_MUNMAP || rec.sys.sys == VMAT_SYS_SHMDT))
    out.literal("  => unmapped");
  if (applied.layout_changed && syscall) out.pointer(FieldType::kVmas, "result", &applied.change.result, {}, kInJson);
  if (!applied.changes.empty()) {
    out.name("cause", applied.cause, {}, kInJson);
    out.pointer(FieldType::kChanges, "changes", &applied.changes);
  }
}

}  // namespace vmatrace
