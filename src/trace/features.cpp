#include "trace/features.h"

#include <bpf/btf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "trace/errors.h"

namespace vmatrace {
namespace {

bool exists(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0;
}

constexpr const char* kTracefs = "/sys/kernel/tracing";

// tracefs is not mounted on a fresh machine here; libbpf needs it for the
// ids of classic tracepoints. Mount it where the kernel expects it.
bool ensure_tracefs(std::string* error) {
  if (exists("/sys/kernel/tracing/events")) return true;
  if (exists("/sys/kernel/debug/tracing/events")) return true;
  if (::mount("nodev", kTracefs, "tracefs", 0, nullptr) == 0) return true;
  *error = std::string("mounting tracefs on ") + kTracefs + " failed: " + std::strerror(errno);
  return false;
}

}  // namespace

std::string attach_mode_name(AttachMode m) {
  switch (m) {
    case AttachMode::kFentry: return "fentry";
    case AttachMode::kKprobe: return "kprobe";
    case AttachMode::kTracepoint: return "tracepoint";
    case AttachMode::kRawTracepoint: return "raw_tracepoint";
    case AttachMode::kKfuncIter: return "kernel_iterator";
    case AttachMode::kProcfs: return "procfs";
    case AttachMode::kNone: return "none";
  }
  return "?";
}

std::optional<AttachMode> parse_attach_mode(const std::string& s) {
  for (auto m : {AttachMode::kFentry, AttachMode::kKprobe, AttachMode::kTracepoint, AttachMode::kRawTracepoint,
                 AttachMode::kKfuncIter, AttachMode::kProcfs})
    if (attach_mode_name(m) == s) return m;
  if (s == "raw_tp") return AttachMode::kRawTracepoint;
  if (s == "tp") return AttachMode::kTracepoint;
  return std::nullopt;
}

std::string family_name(Family f) {
  switch (f) {
    case Family::kSyscalls: return "syscalls";
    case Family::kFaults: return "faults";
    case Family::kProcess: return "process";
    case Family::kExecLayout: return "exec_layout";
  }
  return "?";
}

Features probe_features() {
  Features f;
  struct utsname u;
  if (::uname(&u) == 0) f.kernel_release = u.release;
  f.btf = exists("/sys/kernel/btf/vmlinux");
  f.tracefs = ensure_tracefs(&f.tracefs_error);
  f.syscall_tracepoints = f.tracefs && (exists("/sys/kernel/tracing/events/syscalls/sys_enter_mmap") ||
                                        exists("/sys/kernel/debug/tracing/events/syscalls/sys_enter_mmap"));
  f.kprobes = exists("/sys/bus/event_source/devices/kprobe");
  if (f.btf) {
    std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), btf__free);
    if (vmlinux) f.task_vma_iter = btf__find_by_name_kind(vmlinux.get(), "bpf_iter_task_vma_new", BTF_KIND_FUNC) > 0;
  }
  f.fentry_error = "not probed (no event family uses fentry yet)";
  return f;
}

AttachPlan plan_attach(const Features& f, const std::map<Family, AttachMode>& forced) {
  if (!f.btf)
    throw UserError("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): vmatrace needs a kernel built "
                    "with CONFIG_DEBUG_INFO_BTF=y");
  AttachPlan plan;
  // syscalls: per-syscall tracepoints only cost the six syscalls we trace;
  // raw_syscalls costs every syscall of every process but needs no tracefs.
  {
    FamilyPlan p;
    if (f.syscall_tracepoints) {
      p.mode = AttachMode::kTracepoint;
    } else {
      p.rejected.push_back("tracepoint: " + (f.tracefs ? std::string("syscalls:sys_enter_mmap absent")
                                                       : f.tracefs_error));
      p.mode = AttachMode::kRawTracepoint;
    }
    plan.families[Family::kSyscalls] = p;
  }
  plan.families[Family::kFaults] = {AttachMode::kRawTracepoint, {}};
  plan.families[Family::kProcess] = {AttachMode::kRawTracepoint, {}};
  {
    FamilyPlan p;
    if (f.task_vma_iter) {
      p.mode = AttachMode::kKfuncIter;
    } else {
      p.rejected.push_back("kernel_iterator: bpf_iter_task_vma kfuncs absent (Linux < 6.7)");
      p.mode = AttachMode::kProcfs;
    }
    plan.families[Family::kExecLayout] = p;
  }
  for (const auto& [fam, mode] : forced) {
    auto& p = plan.families[fam];
    bool ok = mode == AttachMode::kNone;  // turning a family off always works
    std::string why;
    if (!ok) switch (fam) {
      case Family::kSyscalls:
        ok = mode == AttachMode::kRawTracepoint || (mode == AttachMode::kTracepoint && f.syscall_tracepoints);
        why = mode == AttachMode::kTracepoint ? "syscall tracepoints unavailable: " + f.tracefs_error
                                              : "syscalls can use tracepoint or raw_tracepoint";
        break;
      case Family::kFaults:
      case Family::kProcess:
        ok = mode == AttachMode::kRawTracepoint;
        why = family_name(fam) + " can only use raw_tracepoint";
        break;
      case Family::kExecLayout:
        ok = mode == AttachMode::kProcfs || (mode == AttachMode::kKfuncIter && f.task_vma_iter);
        why = mode == AttachMode::kKfuncIter ? "bpf_iter_task_vma kfuncs absent (Linux < 6.7)"
                                             : "exec_layout can use kernel_iterator or procfs";
        break;
    }
    if (!ok)
      throw UserError("cannot force " + attach_mode_name(mode) + " for " + family_name(fam) + ": " + why);
    if (p.mode != mode) p.rejected.push_back(attach_mode_name(p.mode) + ": overridden by --attach");
    p.mode = mode;
  }
  return plan;
}

}  // namespace vmatrace
