#pragma once
// What the running kernel offers, probed once, and the plan derived from it:
// which attach mode each event family uses and why better ones were
// rejected. plan_attach() is a pure function of the probed Features, so it
// is unit-tested with fake feature sets.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmatrace {

enum class AttachMode { kFentry, kKprobe, kTracepoint, kRawTracepoint, kKfuncIter, kProcfs, kNone };
std::string attach_mode_name(AttachMode m);
std::optional<AttachMode> parse_attach_mode(const std::string& s);

// The families of events, each attached independently.
enum class Family { kSyscalls, kFaults, kProcess, kExecLayout };
std::string family_name(Family f);
inline constexpr Family kAllFamilies[] = {Family::kSyscalls, Family::kFaults, Family::kProcess,
                                          Family::kExecLayout};

struct Features {
  bool btf = false;                 // /sys/kernel/btf/vmlinux
  std::string kernel_release;
  bool tracefs = false;             // mounted (or mounted by us)
  std::string tracefs_error;        // why not
  bool syscall_tracepoints = false; // events/syscalls/sys_enter_mmap exists
  bool raw_tracepoints = true;      // always in kernels with BPF; a load failure says otherwise
  bool task_vma_iter = false;       // bpf_iter_task_vma_new kfunc in vmlinux BTF (6.7+)
  bool kprobes = false;             // kprobe PMU present (/sys/bus/event_source/devices/kprobe)
  std::string fentry_error;         // empty when an fentry program loaded
  bool fentry = false;
};

// Probes the running kernel. May mount tracefs (needs CAP_SYS_ADMIN).
Features probe_features();

struct FamilyPlan {
  AttachMode mode = AttachMode::kNone;
  std::vector<std::string> rejected;  // "fentry: load refused (EPERM)", ...
};

struct AttachPlan {
  std::map<Family, FamilyPlan> families;
  AttachMode mode(Family f) const { return families.at(f).mode; }
};

// Chooses per family the best mode the features allow, or `forced` where
// given (throws UserError naming why when the kernel lacks it).
AttachPlan plan_attach(const Features& f, const std::map<Family, AttachMode>& forced = {});

}  // namespace vmatrace
