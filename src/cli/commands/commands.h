#pragma once
// The subcommands. main() only parses the command line (cli.cpp) and maps
// exceptions to one-line errors and exit codes.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "output/printer.h"
#include "trace/session.h"

namespace vmatrace {

struct ReplayOptions {
  std::string path;
  PrinterOptions print;
  std::optional<std::string> at;     // --at T (with --maps)
  std::optional<std::string> since;  // --since T
  std::optional<std::string> until;  // --until T
  std::vector<std::string> diff;     // --diff T1 T2
  bool maps = false;
  bool pmap = false;                   // --pmap: pmap-style view instead of maps
  std::optional<std::string> lineage;  // --lineage ADDR
  bool stats = false;  // apply every record, print only the replay rate
  bool records = false;  // --records: every record as stored, one line each
  bool infer_vma_changes = false;  // --infer-vma-changes: ignore the kernel's recorded VMA stores
};

int run_trace(TraceOptions opts);

// `vmatrace report FILE --faults [--json|--folded]`: page-fault hotspots.
struct ReportOptions {
  std::string path;
  bool faults = false;
  bool malloc = false;  // --malloc: call sites ranked by heap/mmap growth
  bool json = false, folded = false;
  std::optional<uint32_t> pid;
  size_t top = 20;
  std::string interval = "100ms";
  std::optional<std::string> html;  // --html OUT: the interactive timeline page
};
int run_report(const ReportOptions& opts);
// `vmatrace report FILE --html OUT.html` (report_html.cpp).
int run_html_report(const ReportOptions& opts);
// "100ms", "1s", "250us", "0.5s" -> ns; throws UserError.
uint64_t parse_interval(const std::string& s);
int run_replay(const ReplayOptions& opts);
// `vmatrace replay FILE --lineage ADDR [--at T] [--pid PID]`: the history of
// the VMA covering ADDR, from the VMA change events (lineage.cpp).
int run_lineage(const ReplayOptions& opts);
int run_info(const std::string& path, bool json);
int run_features(bool json, const std::map<Family, AttachMode>& forced);

// Parses a moment: "+2.5s", "+300ms", "+1.5" (seconds), "+20us", "+5ns"
// relative to `start`, or an absolute CLOCK_MONOTONIC ns value. Throws
// UserError naming the bad value.
uint64_t parse_moment(const std::string& s, uint64_t start);

// "--attach syscalls=raw_tracepoint,exec_layout=procfs" or a bare mode
// applied to every family that offers it.
std::map<Family, AttachMode> parse_attach(const std::string& s);

int run_cli(int argc, char** argv);

}  // namespace vmatrace
