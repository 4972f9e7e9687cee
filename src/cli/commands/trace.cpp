#include <cstdio>
#include <sstream>

#include "cli/commands/commands.h"
#include "trace/errors.h"

namespace vmatrace {

std::map<Family, AttachMode> parse_attach(const std::string& s) {
  std::map<Family, AttachMode> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto eq = item.find('=');
    std::string fam = eq == std::string::npos ? "" : item.substr(0, eq);
    std::string mode = eq == std::string::npos ? item : item.substr(eq + 1);
    auto m = parse_attach_mode(mode);
    if (!m)
      throw UserError("unknown attach mode '" + mode +
                      "': use fentry, kprobe, tracepoint, raw_tracepoint, kernel_iterator or procfs");
    if (fam.empty()) {
      // A bare mode applies to the families that can use it.
      if (*m == AttachMode::kTracepoint || *m == AttachMode::kRawTracepoint) out[Family::kSyscalls] = *m;
      else if (*m == AttachMode::kKfuncIter || *m == AttachMode::kProcfs) out[Family::kExecLayout] = *m;
      else throw UserError("attach mode " + mode + " is not available for any event family of this vmatrace yet");
      continue;
    }
    bool found = false;
    for (Family f : kAllFamilies)
      if (family_name(f) == fam) out[f] = *m, found = true;
    if (!found) throw UserError("unknown event family '" + fam + "': use syscalls, faults, process or exec_layout");
  }
  return out;
}

int run_trace(TraceOptions opts) {
  Session session(std::move(opts));
  return session.run();
}

int run_features(bool json, const std::map<Family, AttachMode>& forced) {
  Features f = probe_features();
  AttachPlan plan = plan_attach(f, forced);
  if (json) {
    std::printf("{\"kernel\":\"%s\",\"btf\":%s,\"tracefs\":%s,\"kprobes\":%s,\"task_vma_iter\":%s,\"families\":{",
                f.kernel_release.c_str(), f.btf ? "true" : "false", f.tracefs ? "true" : "false",
                f.kprobes ? "true" : "false", f.task_vma_iter ? "true" : "false");
    bool first = true;
    for (Family fam : kAllFamilies) {
      const auto& p = plan.families.at(fam);
      std::printf("%s\"%s\":{\"mode\":\"%s\",\"rejected\":[", first ? "" : ",", family_name(fam).c_str(),
                  attach_mode_name(p.mode).c_str());
      for (size_t i = 0; i < p.rejected.size(); i++)
        std::printf("%s\"%s\"", i ? "," : "", p.rejected[i].c_str());
      std::printf("]}");
      first = false;
    }
    std::printf("}}\n");
    return 0;
  }
  std::printf("kernel %s: BTF %s, tracefs %s, kprobes %s, task_vma iterator %s\n", f.kernel_release.c_str(),
              f.btf ? "yes" : "no", f.tracefs ? "yes" : ("no (" + f.tracefs_error + ")").c_str(),
              f.kprobes ? "yes" : "no", f.task_vma_iter ? "yes" : "no");
  std::printf("%-12s %-16s %s\n", "FAMILY", "MODE", "REJECTED");
  for (Family fam : kAllFamilies) {
    const auto& p = plan.families.at(fam);
    std::string rej;
    for (const auto& r : p.rejected) rej += (rej.empty() ? "" : "; ") + r;
    std::printf("%-12s %-16s %s\n", family_name(fam).c_str(), attach_mode_name(p.mode).c_str(),
                rej.empty() ? "-" : rej.c_str());
  }
  return 0;
}

}  // namespace vmatrace
