#include <cstdio>
#include <sstream>

#include "cli/commands/commands.h"
#include "util/errors.h"
#include "trace/fault_perf.h"

namespace vmatrace {

std::map<Family, AttachMode> parse_attach(const std::string& s) { return parse_attach_spec(s); }

int run_trace(TraceOptions opts) {
  Session session(std::move(opts));
  return session.run();
}

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + '"';
}

const char* json_bool(bool b) { return b ? "true" : "false"; }

}  // namespace

int run_features(bool json, const std::map<Family, AttachMode>& forced) {
  Features f = probe_features();
  AttachPlan plan = plan_attach(f, forced);
  // Major vs minor faults: the perf software events, or unknown.
  std::string majmin_error = probe_fault_perf();
  std::string kprobes = !f.kprobes ? "no" : f.kprobe_missing.empty() ? "yes" : "yes, but " + f.kprobe_missing.front() + " is not in /proc/kallsyms";
  if (json) {
    std::printf("{\"kernel\":%s,\"btf\":%s,\"tracefs\":%s,\"kprobes\":%s,\"fentry\":%s,\"fentry_error\":%s,"
                "\"task_vma_iter\":%s,\"families\":{",
                json_string(f.kernel_release).c_str(), json_bool(f.btf), json_bool(f.tracefs), json_bool(f.kprobes),
                json_bool(f.fentry), json_string(f.fentry_error).c_str(), json_bool(f.task_vma_iter));
    bool first = true;
    for (Family fam : kAllFamilies) {
      const auto& p = plan.families.at(fam);
      std::printf("%s\"%s\":{\"mode\":\"%s\",\"rejected\":[", first ? "" : ",", family_name(fam).c_str(),
                  attach_mode_name(p.mode).c_str());
      for (size_t i = 0; i < p.rejected.size(); i++) std::printf("%s%s", i ? "," : "", json_string(p.rejected[i]).c_str());
      std::printf("]");
      if (fam == Family::kSyscalls) {
        std::printf(",\"absent\":[");
        for (size_t i = 0; i < p.absent.size(); i++) std::printf("%s%s", i ? "," : "", json_string(p.absent[i]).c_str());
        std::printf("]");
      }
      std::printf("}");
      first = false;
    }
    std::printf("},\"fault_majmin\":\"%s\",\"fault_majmin_error\":%s}\n",
                majmin_error.empty() ? "perf_event" : "unknown", json_string(majmin_error).c_str());
    return 0;
  }
  std::printf("kernel %s: BTF %s, tracefs %s, kprobes %s, fentry %s, task_vma iterator %s\n",
              f.kernel_release.c_str(), f.btf ? "yes" : "no",
              f.tracefs ? "yes" : ("no (" + f.tracefs_error + ")").c_str(), kprobes.c_str(),
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
    std::printf("faults: major/minor from perf software events (page-faults-maj/-min, one per CPU)\n");
  else
    std::printf("faults: major/minor unknown (%s): fault records carry the access type only\n",
                majmin_error.c_str());
  return 0;
}

}  // namespace vmatrace
