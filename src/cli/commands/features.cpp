// `vmatrace features`: what this kernel offers and how each event family
// would attach.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "trace/fault_perf.h"
#include "trace/features.h"
#include "util/json.h"

namespace vmatrace {
namespace {

void strings(JsonWriter& w, const std::vector<std::string>& v) {
  w.begin_array();
  for (const auto& s : v) w.value(s);
  w.end_array();
}

int run_features(bool json, const std::map<Family, AttachMode>& forced) {
  Features f = probe_features();
  AttachPlan plan = plan_attach(f, forced);
  // Major vs minor faults: the perf software events, or unknown.
  std::string majmin_error = probe_fault_perf();
  std::string kprobes = !f.kprobes ? "no"
                        : f.kprobe_missing.empty()
                            ? "yes"
                            : "yes, but " + f.kprobe_missing.front() + " is not in /proc/kallsyms";
  if (json) {
    std::string out;
    JsonWriter w(out);
    w.begin_object()
        .kv("kernel", f.kernel_release)
        .kv("btf", f.btf)
        .kv("tracefs", f.tracefs)
        .kv("kprobes", f.kprobes)
        .kv("fentry", f.fentry)
        .kv("fentry_error", f.fentry_error)
        .kv("task_vma_iter", f.task_vma_iter);
    w.key("families").begin_object();
    for (Family fam : kAllFamilies) {
      const auto& p = plan.families.at(fam);
      w.key(family_name(fam)).begin_object().kv("mode", attach_mode_name(p.mode));
      strings(w.key("rejected"), p.rejected);
      if (fam == Family::kSyscalls) strings(w.key("absent"), p.absent);
      w.end_object();
    }
    w.end_object();
    w.kv("fault_majmin", majmin_error.empty() ? "perf_event" : "unknown").kv("fault_majmin_error", majmin_error);
    w.end_object();
    out += '\n';
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  std::printf("kernel %s: BTF %s, tracefs %s, kprobes %s, fentry %s, task_vma iterator %s\n", f.kernel_release.c_str(),
              f.btf ? "yes" : "no", f.tracefs ? "yes" : ("no (" + f.tracefs_error + ")").c_str(), kprobes.c_str(),
              f.fentry ? "yes" : ("no (" + f.fentry_error + ")").c_str(), f.task_vma_iter ? "yes" : "no");
  std::printf("%-12s %-16s %s\n", "FAMILY", "MODE", "REJECTED");
  for (Family fam : kAllFamilies) {
    const auto& p = plan.families.at(fam);
    std::string rej;
    for (const auto& r : p.rejected) rej += (rej.empty() ? "" : "; ") + r;
    std::printf("%-12s %-16s %s\n", family_name(fam).c_str(), attach_mode_name(p.mode).c_str(),
                rej.empty() ? "-" : rej.c_str());
  }
  if (const auto& absent = plan.families.at(Family::kSyscalls).absent; !absent.empty()) {
    std::string names;
    for (const auto& n : absent) names += (names.empty() ? "" : ", ") + n;
    std::printf("syscalls: not traced, this kernel has no %s for them: %s\n",
                plan.mode(Family::kSyscalls) == AttachMode::kTracepoint ? "tracepoints" : "functions", names.c_str());
  }
  if (majmin_error.empty())
    std::printf(
        "faults: major/minor from perf software events (page-faults-maj/-min, on the traced threads; per CPU with "
        "--cgroup or --comm)\n");
  else
    std::printf("faults: major/minor unknown (%s): fault records carry the access type only\n", majmin_error.c_str());
  return 0;
}

struct FeaturesArgs {
  bool json = false;
  std::string attach;
};

}  // namespace

Command add_features_command(CLI::App& app) {
  auto a = std::make_shared<FeaturesArgs>();
  auto* features = app.add_subcommand("features", "show how each event family attaches on this kernel");
  features->add_flag("--json", a->json, "as JSON");
  features->add_option("--attach", a->attach, "show the plan with these modes forced");
  return {features, [a] {
            return run_features(a->json,
                                a->attach.empty() ? std::map<Family, AttachMode>{} : parse_attach_spec(a->attach));
          }};
}

}  // namespace vmatrace
