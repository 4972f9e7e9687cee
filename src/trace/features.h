#pragma once
// What the running kernel offers, probed once, and the plan derived from it:
// which attach mode each event family uses and why better ones were
// rejected. plan_attach() is a pure function of the probed Features, so it
// is unit-tested with fake feature sets.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vmatrace/abi/syscalls.h"

namespace vmatrace {

enum class AttachMode { kFentry, kKprobe, kTracepoint, kRawTracepoint, kKfuncIter, kProcfs, kNone };
std::string attach_mode_name(AttachMode m);
std::optional<AttachMode> parse_attach_mode(const std::string& s);

// The families of events, each attached independently.
// kVma: the kernel's own stores into each traced VMA tree (bpf/vma.bpf.c);
// kNone there means the VMA changes are inferred from the syscalls.
enum class Family { kSyscalls, kFaults, kProcess, kExecLayout, kVma };
std::string family_name(Family f);
inline constexpr Family kAllFamilies[] = {Family::kSyscalls, Family::kFaults, Family::kProcess, Family::kExecLayout,
                                          Family::kVma};

// The kernel functions the fentry and kprobe flavours of the vma family
// hook (bpf/vma.bpf.c): vma_mas_store(vma, mas), through which 6.1 stores a
// VMA into mm->mm_mt over its whole range (mmap, merge, split, mremap,
// stack growth), and perf_event_mmap(vma), which follows do_brk_flags()'s
// direct store (and restates the VMA after mmap and mprotect). Later
// kernels store through inlined vma_iter_*() helpers: no function to hook,
// so these flavours are unavailable there (maple_tree:ma_write remains).
// Whether the running kernel has them is looked up in BTF / kallsyms.
inline constexpr const char* kVmaHookFunctions[] = {"vma_mas_store", "perf_event_mmap"};

// The kernel functions the fentry and kprobe flavours of the syscalls
// family hook: the x86-64 syscall entry points (arch/x86/entry/syscall_64.c
// calls them with the user's pt_regs since 4.17), of the rows of
// VMAT_SYSCALLS marked required: they exist on every kernel vmatrace
// supports, so a flavour that cannot hook one of them is unavailable.
#define VMAT_SYSCALL_FUNCTION_ROW(name, NAME, id, x86_64_nr, nargs, required, ...) \
  VMAT_IF_REQUIRED(required, "__x64_sys_" #name, )
inline constexpr const char* kSyscallFunctions[] = {VMAT_SYSCALLS(VMAT_SYSCALL_FUNCTION_ROW)};
#undef VMAT_SYSCALL_FUNCTION_ROW

// The other syscalls of the table. A kernel may lack some (shmat/shmdt
// need CONFIG_SYSVIPC): each is looked up per flavour (BTF for fentry,
// kallsyms for kprobe, tracefs for tracepoint) and one that is missing is
// left out (FamilyPlan::absent) without costing the others.
#define VMAT_OPTIONAL_SYSCALL_ROW(name, NAME, id, x86_64_nr, nargs, required, ...) VMAT_IF_OPTIONAL(required, #name, )
inline constexpr const char* kOptionalSyscalls[] = {VMAT_SYSCALLS(VMAT_OPTIONAL_SYSCALL_ROW)};
#undef VMAT_OPTIONAL_SYSCALL_ROW

// Attach modes a user asked for, per family ("syscalls=kprobe,faults=none").
using ForcedModes = std::map<Family, AttachMode>;

struct Features {
  bool btf = false;  // /sys/kernel/btf/vmlinux
  std::string kernel_release;
  bool tracefs = false;              // mounted (or mounted by us)
  std::string tracefs_error;         // why not
  bool syscall_tracepoints = false;  // events/syscalls/sys_enter_mmap exists
  bool raw_tracepoints = true;       // always in kernels with BPF; a load failure says otherwise
  bool task_vma_iter = false;        // bpf_iter_task_vma_new kfunc in vmlinux BTF (6.7+)
  bool kprobes = false;              // kprobe PMU present (/sys/bus/event_source/devices/kprobe)
  // Of kSyscallFunctions, those not in /proc/kallsyms (only looked up when
  // kprobes is true): a kprobe on any of them would fail to attach.
  std::vector<std::string> kprobe_missing;
  // Of kVmaHookFunctions: those not in /proc/kallsyms (kprobes), and why a
  // trivial kprobe on one of them was refused ("" if all attached).
  std::vector<std::string> vma_kprobe_missing;
  std::string vma_kprobe_error;
  // Why fentry on kVmaHookFunctions cannot work, "" when a trivial program
  // attached to each.
  std::string vma_fentry_error = "vmlinux BTF missing";
  // The maple_tree:ma_write tracepoint (Linux 6.1+): btf_trace_ma_write in BTF.
  bool maple_tree_tp = false;
  bool fentry = false;       // a trivial fexit program on __x64_sys_brk loaded and attached
  std::string fentry_error;  // why not, e.g. "load refused (EPERM)"
  // Of kOptionalSyscalls, those each syscalls mode cannot hook on this
  // kernel: __x64_sys_NAME not in vmlinux BTF (kFentry), not in
  // /proc/kallsyms (kKprobe), no syscalls:sys_enter_NAME (kTracepoint).
  // raw_syscalls filters by number and needs nothing.
  std::map<AttachMode, std::vector<std::string>> syscalls_absent;
  // VMATRACE_ATTACH (same syntax as --attach), read with the features so
  // that every caller of plan_attach() honours it, the way bpftrace's
  // --no-feature switches features off to exercise fallbacks. --attach wins.
  ForcedModes env_forced;
};

// Parses "MODE" or "FAMILY=MODE[,...]" (--attach and VMATRACE_ATTACH). A
// bare MODE applies to the families that can use it. Throws UserError.
ForcedModes parse_attach_spec(const std::string& spec);

// Probes the running kernel (and reads VMATRACE_ATTACH). May mount tracefs
// (needs CAP_SYS_ADMIN). Leaves nothing loaded or attached.
Features probe_features();

struct FamilyPlan {
  AttachMode mode = AttachMode::kNone;
  std::vector<std::string> rejected;  // "fentry: load refused (EPERM)", ...
  // syscalls: the kOptionalSyscalls the chosen mode cannot hook here (left
  // untraced; the others attach as usual).
  std::vector<std::string> absent;
};

struct AttachPlan {
  std::map<Family, FamilyPlan> families;
  AttachMode mode(Family f) const { return families.at(f).mode; }
};

// Chooses per family the best mode the features allow, or the forced one
// (`forced`, else f.env_forced) where given; throws UserError naming why
// when the kernel lacks a forced mode.
AttachPlan plan_attach(const Features& f, const ForcedModes& forced = {});

}  // namespace vmatrace
