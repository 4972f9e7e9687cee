#include "trace/features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "util/errors.h"
#include "util/unique_fd.h"

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

std::string errno_text(int err) {
  const char* name = ::strerrorname_np(err);
  return name ? name : std::to_string(err);
}

// Loads a two-instruction tracing program ("return 0") of `type` on `fn`
// and attaches it; closing both fds detaches it again. "" on success, else
// why not.
std::string probe_fentry_on(const struct btf* vmlinux, const char* fn, bpf_attach_type type) {
  int id = btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC);
  if (id <= 0) return std::string(fn) + " not in vmlinux BTF";
  struct bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts{};  // not LIBBPF_OPTS: g++ 12 rejects its designators out of order
  opts.sz = sizeof(opts);
  opts.expected_attach_type = type;
  opts.attach_btf_id = static_cast<__u32>(id);
  UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_TRACING, "vmat_fentry_probe", "GPL", insns, 2, &opts));
  if (!prog) return "load refused (" + errno_text(errno) + ")";
  UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
  if (!link) return std::string("attach to ") + fn + " refused (" + errno_text(errno) + ")";
  return "";
}

// libbpf-tools' fentry_can_attach() approach: whether trampolines work is
// decided by the kernel (config, lockdown, LSMs, arch support), so try it.
// A two-instruction fexit program ("return 0") on __x64_sys_brk is loaded
// and attached, then both fds are closed, which detaches it: the probe
// leaves nothing behind. Returns "" on success, else why not.
std::string probe_fentry(const struct btf* vmlinux) {
  for (const char* fn : kSyscallFunctions)
    if (btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC) <= 0) return std::string(fn) + " not in vmlinux BTF";
  return probe_fentry_on(vmlinux, "__x64_sys_brk", BPF_TRACE_FEXIT);
}

// A function in kallsyms can still refuse kprobes (NOKPROBE_SYMBOL, code
// kprobes cannot patch): attach a trivial program through the kprobe PMU,
// then close both fds, which detaches it. "" on success, else why not.
std::string probe_kprobe_on(const char* fn) {
  int pmu_type = -1;
  std::ifstream("/sys/bus/event_source/devices/kprobe/type") >> pmu_type;
  if (pmu_type < 0) return "no kprobe PMU";
  struct bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_KPROBE, "vmat_kprobe_probe", "GPL", insns, 2, nullptr));
  if (!prog) return "kprobe program load refused (" + errno_text(errno) + ")";
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = static_cast<__u32>(pmu_type);
  attr.config1 = reinterpret_cast<uint64_t>(fn);  // kprobe_func
  attr.config2 = 0;                               // probe_offset
  UniqueFd ev(static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
  if (!ev) return std::string("kprobe on ") + fn + " refused (" + errno_text(errno) + ")";
  if (::ioctl(ev.get(), PERF_EVENT_IOC_SET_BPF, prog.get()) != 0)
    return std::string("attaching to the kprobe on ") + fn + " refused (" + errno_text(errno) + ")";
  return "";
}

// A kprobe on a function missing from kallsyms fails at attach time, after
// the whole object loaded: look the targets up first.
std::vector<std::string> missing_from_kallsyms(std::set<std::string> want) {
  std::ifstream in("/proc/kallsyms");
  std::string line;
  while (!want.empty() && std::getline(in, line)) {
    // "ffffffff81305a70 T __x64_sys_mmap" (modules add "\t[mod]")
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    auto end = line.find('\t', sp);
    want.erase(line.substr(sp + 1, end == std::string::npos ? std::string::npos : end - sp - 1));
  }
  return {want.begin(), want.end()};
}

constexpr const char* kNoKprobes = "this kernel has no kprobes (CONFIG_KPROBES is off)";

std::string kprobe_unavailable(const Features& f) {
  if (!f.kprobes) return kNoKprobes;
  if (!f.kprobe_missing.empty()) return f.kprobe_missing.front() + " is not in /proc/kallsyms";
  return "";
}

// Kernels after 6.1 store VMAs through inlined helpers: say so, or "not in
// BTF" reads like a broken kernel.
constexpr const char* kNoVmaFunction = " (6.1's VMA-tree writer; later kernels inline theirs)";

std::string vma_fentry_unavailable(const Features& f) {
  if (!f.fentry) return f.fentry_error;
  if (f.vma_fentry_error.starts_with(kVmaHookFunctions[0]) && f.vma_fentry_error.ends_with("not in vmlinux BTF"))
    return f.vma_fentry_error + kNoVmaFunction;
  return f.vma_fentry_error;
}

std::string vma_kprobe_unavailable(const Features& f) {
  if (!f.kprobes) return kNoKprobes;
  if (!f.vma_kprobe_missing.empty())
    return f.vma_kprobe_missing.front() + " is not in /proc/kallsyms" +
           (f.vma_kprobe_missing.front() == kVmaHookFunctions[0] ? kNoVmaFunction : "");
  return f.vma_kprobe_error;
}

std::string maple_tree_unavailable(const Features& f) {
  return f.maple_tree_tp ? "" : "no maple_tree:ma_write tracepoint (Linux < 6.1)";
}

std::string tracepoint_unavailable(const Features& f) {
  if (f.syscall_tracepoints) return "";
  return f.tracefs ? "syscalls:sys_enter_mmap absent" : f.tracefs_error;
}

}  // namespace

std::string attach_mode_name(AttachMode m) {
  switch (m) {
    case AttachMode::kFentry:
      return "fentry";
    case AttachMode::kKprobe:
      return "kprobe";
    case AttachMode::kTracepoint:
      return "tracepoint";
    case AttachMode::kRawTracepoint:
      return "raw_tracepoint";
    case AttachMode::kKfuncIter:
      return "kernel_iterator";
    case AttachMode::kProcfs:
      return "procfs";
    case AttachMode::kNone:
      return "none";
  }
  return "?";
}

std::optional<AttachMode> parse_attach_mode(const std::string& s) {
  for (auto m : {AttachMode::kFentry, AttachMode::kKprobe, AttachMode::kTracepoint, AttachMode::kRawTracepoint,
                 AttachMode::kKfuncIter, AttachMode::kProcfs})
    if (attach_mode_name(m) == s) return m;
  if (s == "raw_tp") return AttachMode::kRawTracepoint;
  if (s == "tp") return AttachMode::kTracepoint;
  // The vma family's names for its modes: maple_tree is its raw tracepoint,
  // inference (no kernel source) is "none".
  if (s == "maple_tree") return AttachMode::kRawTracepoint;
  if (s == "none" || s == "inference") return AttachMode::kNone;
  return std::nullopt;
}

ForcedModes parse_attach_spec(const std::string& spec) {
  ForcedModes out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto eq = item.find('=');
    std::string fam = eq == std::string::npos ? "" : item.substr(0, eq);
    std::string mode = eq == std::string::npos ? item : item.substr(eq + 1);
    auto m = parse_attach_mode(mode);
    if (fam.empty() && (mode == "maple_tree" || mode == "inference")) fam = "vma";
    if (fam.empty() && mode == "none") throw UserError("'none' needs a family: FAMILY=none (e.g. vma=none)");
    if (!m)
      throw UserError("unknown attach mode '" + mode +
                      "': use fentry, kprobe, tracepoint, raw_tracepoint, kernel_iterator or procfs");
    if (fam.empty()) {
      // A bare mode applies to the families that can use it.
      if (*m == AttachMode::kFentry || *m == AttachMode::kKprobe || *m == AttachMode::kTracepoint ||
          *m == AttachMode::kRawTracepoint)
        out[Family::kSyscalls] = *m;
      else
        out[Family::kExecLayout] = *m;
      continue;
    }
    bool found = false;
    for (Family f : kAllFamilies)
      if (family_name(f) == fam) out[f] = *m, found = true;
    if (!found)
      throw UserError("unknown event family '" + fam + "': use syscalls, faults, process, exec_layout or vma");
  }
  return out;
}

std::string family_name(Family f) {
  switch (f) {
    case Family::kSyscalls:
      return "syscalls";
    case Family::kFaults:
      return "faults";
    case Family::kProcess:
      return "process";
    case Family::kExecLayout:
      return "exec_layout";
    case Family::kVma:
      return "vma";
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
  // Since 4.17 the kprobe PMU is how kprobes are attached; without it (no
  // CONFIG_KPROBES, as on the 6.18 development machines) there are none.
  f.kprobes = exists("/sys/bus/event_source/devices/kprobe");
  if (f.kprobes) {
    // One pass over kallsyms (100k+ lines) for every function a kprobe may target.
    std::set<std::string> want(std::begin(kSyscallFunctions), std::end(kSyscallFunctions));
    want.insert(std::begin(kVmaHookFunctions), std::end(kVmaHookFunctions));
    for (const char* name : kOptionalSyscalls) want.insert(std::string("__x64_sys_") + name);
    std::set<std::string> missing;
    for (auto& fn : missing_from_kallsyms(want)) missing.insert(std::move(fn));
    auto of = [&missing](auto first, auto last, const std::string& prefix = "") {
      std::vector<std::string> out;
      for (auto it = first; it != last; ++it)
        if (missing.count(prefix + *it)) out.push_back(*it);
      return out;
    };
    f.kprobe_missing = of(std::begin(kSyscallFunctions), std::end(kSyscallFunctions));
    f.vma_kprobe_missing = of(std::begin(kVmaHookFunctions), std::end(kVmaHookFunctions));
    f.syscalls_absent[AttachMode::kKprobe] =
        of(std::begin(kOptionalSyscalls), std::end(kOptionalSyscalls), "__x64_sys_");
    for (const char* fn : kVmaHookFunctions)
      if (f.vma_kprobe_missing.empty() && f.vma_kprobe_error.empty()) f.vma_kprobe_error = probe_kprobe_on(fn);
  }
  if (f.syscall_tracepoints)
    for (const char* name : kOptionalSyscalls)
      if (!exists((std::string("/sys/kernel/tracing/events/syscalls/sys_enter_") + name).c_str()) &&
          !exists((std::string("/sys/kernel/debug/tracing/events/syscalls/sys_enter_") + name).c_str()))
        f.syscalls_absent[AttachMode::kTracepoint].push_back(name);
  f.fentry_error = "vmlinux BTF missing";
  if (f.btf) {
    std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), btf__free);
    if (vmlinux) {
      f.task_vma_iter = btf__find_by_name_kind(vmlinux.get(), "bpf_iter_task_vma_new", BTF_KIND_FUNC) > 0;
      // Every raw tracepoint has its btf_trace_<name> typedef in vmlinux BTF.
      f.maple_tree_tp = btf__find_by_name_kind(vmlinux.get(), "btf_trace_ma_write", BTF_KIND_TYPEDEF) > 0;
      f.vma_fentry_error.clear();
      for (const char* fn : kVmaHookFunctions)
        if (f.vma_fentry_error.empty()) f.vma_fentry_error = probe_fentry_on(vmlinux.get(), fn, BPF_TRACE_FENTRY);
      f.fentry_error = probe_fentry(vmlinux.get());
      f.fentry = f.fentry_error.empty();
      for (const char* name : kOptionalSyscalls)
        if (btf__find_by_name_kind(vmlinux.get(), (std::string("__x64_sys_") + name).c_str(), BTF_KIND_FUNC) <= 0)
          f.syscalls_absent[AttachMode::kFentry].push_back(name);
    } else {
      f.fentry_error = std::string("loading vmlinux BTF failed: ") + std::strerror(errno);
    }
  }
  if (const char* env = std::getenv("VMATRACE_ATTACH"); env && *env) {
    try {
      f.env_forced = parse_attach_spec(env);
    } catch (const UserError& e) {
      throw UserError(std::string("VMATRACE_ATTACH=") + env + ": " + e.what());
    }
  }
  return f;
}

AttachPlan plan_attach(const Features& f, const ForcedModes& forced) {
  if (!f.btf)
    throw UserError(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): vmatrace needs a kernel built "
        "with CONFIG_DEBUG_INFO_BTF=y");
  AttachPlan plan;
  // syscalls, best first: fexit gets arguments and result in one program
  // with no in-flight map and the lowest overhead; kprobes on the same
  // functions cost a trap each; per-syscall tracepoints only cost the six
  // syscalls we trace; raw_syscalls costs every syscall of every process
  // but needs no tracefs.
  {
    FamilyPlan p;
    auto consider = [&p](AttachMode m, const std::string& why_not) {
      if (p.mode != AttachMode::kNone) return;
      if (why_not.empty())
        p.mode = m;
      else
        p.rejected.push_back(attach_mode_name(m) + ": " + why_not);
    };
    consider(AttachMode::kFentry, f.fentry ? "" : f.fentry_error);
    consider(AttachMode::kKprobe, kprobe_unavailable(f));
    consider(AttachMode::kTracepoint, tracepoint_unavailable(f));
    consider(AttachMode::kRawTracepoint, "");
    plan.families[Family::kSyscalls] = p;
  }
  plan.families[Family::kFaults] = {AttachMode::kRawTracepoint, {}, {}};
  plan.families[Family::kProcess] = {AttachMode::kRawTracepoint, {}, {}};
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
  {
    // vma, best first: fentry on the VMA-tree writer functions (no trap),
    // kprobes on them, the maple_tree:ma_write raw tracepoint (fires for
    // every maple tree in the system, filtered by tgid then by tree), else
    // inference from the syscalls in user space ("none").
    FamilyPlan p;
    auto consider = [&p](AttachMode m, const std::string& why_not) {
      if (p.mode != AttachMode::kNone) return;
      if (why_not.empty())
        p.mode = m;
      else
        p.rejected.push_back(attach_mode_name(m) + ": " + why_not);
    };
    consider(AttachMode::kFentry, vma_fentry_unavailable(f));
    consider(AttachMode::kKprobe, vma_kprobe_unavailable(f));
    consider(AttachMode::kRawTracepoint, maple_tree_unavailable(f));
    plan.families[Family::kVma] = p;
  }
  ForcedModes all = f.env_forced;
  for (const auto& [fam, mode] : forced) all[fam] = mode;
  for (const auto& [fam, mode] : all) {
    auto& p = plan.families[fam];
    bool ok = mode == AttachMode::kNone;  // turning a family off always works
    std::string why;
    if (!ok) switch (fam) {
        case Family::kSyscalls:
          switch (mode) {
            case AttachMode::kFentry:
              ok = f.fentry;
              why = "the fentry probe failed: " + f.fentry_error;
              break;
            case AttachMode::kKprobe:
              why = kprobe_unavailable(f);
              ok = why.empty();
              break;
            case AttachMode::kTracepoint:
              why = tracepoint_unavailable(f);
              ok = why.empty();
              break;
            case AttachMode::kRawTracepoint:
              ok = true;
              break;
            default:
              why = "syscalls can use fentry, kprobe, tracepoint or raw_tracepoint";
          }
          break;
        case Family::kFaults:
        case Family::kProcess:
          ok = mode == AttachMode::kRawTracepoint;
          why = family_name(fam) + " can only use raw_tracepoint";
          break;
        case Family::kVma:
          switch (mode) {
            case AttachMode::kFentry:
              why = vma_fentry_unavailable(f);
              break;
            case AttachMode::kKprobe:
              why = vma_kprobe_unavailable(f);
              break;
            case AttachMode::kRawTracepoint:
              why = maple_tree_unavailable(f);
              break;
            default:
              why = "vma can use fentry, kprobe, maple_tree (raw_tracepoint) or none (inference)";
          }
          ok = why.empty();
          break;
        case Family::kExecLayout:
          ok = mode == AttachMode::kProcfs || (mode == AttachMode::kKfuncIter && f.task_vma_iter);
          why = mode == AttachMode::kKfuncIter ? "bpf_iter_task_vma kfuncs absent (Linux < 6.7)"
                                               : "exec_layout can use kernel_iterator or procfs";
          break;
      }
    const char* source = forced.count(fam) ? "--attach" : "VMATRACE_ATTACH";
    if (!ok)
      throw UserError("cannot force " + attach_mode_name(mode) + " for " + family_name(fam) + ": " + why +
                      (forced.count(fam) ? "" : " (forced by VMATRACE_ATTACH)"));
    if (p.mode != mode) p.rejected.push_back(attach_mode_name(p.mode) + ": overridden by " + source);
    p.mode = mode;
  }
  // The optional syscalls the chosen mode cannot hook: left out, not fatal.
  auto& sys = plan.families[Family::kSyscalls];
  if (auto it = f.syscalls_absent.find(sys.mode); it != f.syscalls_absent.end()) sys.absent = it->second;
  return plan;
}

}  // namespace vmatrace
