#pragma once
// The subcommands, one file each: trace.cpp (trace and record), replay.cpp,
// lineage.cpp (replay --lineage), replay_top.cpp (replay --top), top.cpp and
// top_screen.cpp (the live view), report.cpp (--faults, --malloc),
// report_html.cpp (report --html), info.cpp, features.cpp. Each adds its
// subcommand and options to the command line and returns how to run it;
// cli.cpp only parses and maps exceptions to one-line errors and exit codes.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "output/printer.h"
#include "sym/unwinder.h"

namespace CLI {
class App;
}

namespace vmatrace {

class RecordingReader;

// A subcommand added to the command line: its CLI11 app (chosen when it
// parsed) and what to run then, with its options bound to its own state.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_trace_command(CLI::App& app);     // trace.cpp
Command add_record_command(CLI::App& app);    // trace.cpp
Command add_replay_command(CLI::App& app);    // replay.cpp
Command add_report_command(CLI::App& app);    // report.cpp
Command add_info_command(CLI::App& app);      // info.cpp
Command add_features_command(CLI::App& app);  // features.cpp
Command add_top_command(CLI::App& app);       // top.cpp

struct ReplayOptions {
  std::string path;
  PrinterOptions print;
  std::optional<std::string> at;     // --at T (with --maps)
  std::optional<std::string> since;  // --since T
  std::optional<std::string> until;  // --until T
  std::vector<std::string> diff;     // --diff T1 T2
  bool maps = false;
  bool pmap = false;                   // --pmap: pmap-style view instead of maps
  bool rss = false;                    // --rss (with --pmap --at): Rss, Anonymous, Swap per VMA
  std::optional<std::string> lineage;  // --lineage ADDR
  bool stats = false;                  // apply every record, print only the replay rate
  bool records = false;                // --records: every record as stored, one line each
  bool infer_vma_changes = false;      // --infer-vma-changes: ignore the kernel's recorded VMA stores
  bool top = false;                    // --top: play it back in top's live view
  double speed = 1.0;                  // --speed X (with --top)
  std::string top_refresh = "500ms";   // --refresh (with --top): time between frames, in the recording's time
  bool top_batch = false;              // --batch (with --top): plain-text frames
  int top_frames = 1;
  size_t top_width = 160, top_height = 50;
  SymbolSources symbols;  // --debug-dir, --debuginfod
};
// --debug-dir and --debuginfod of the commands that read a recording
// (replay, report).
void add_symbol_options(CLI::App* sub, SymbolSources& symbols);  // replay.cpp
int run_replay(const ReplayOptions& opts);
// `vmatrace replay FILE --lineage ADDR [--at T] [--pid PID]`: the history of
// the VMA covering ADDR, from the VMA change events (lineage.cpp).
int run_lineage(const ReplayOptions& opts);
// The trailer's end_ts (when tracing stopped), or 0 without one (replay.cpp).
uint64_t trailer_end_ts(const RecordingReader& reader);
// `vmatrace replay FILE --top [--speed X]`: the recording in the live view (replay_top.cpp).
int run_replay_top(const ReplayOptions& opts);
// The exit status of a replay that read `records` records: 0, or
// kExitDamaged with "...; replayed N records up to there" on stderr.
int replayed_status(const RecordingReader& reader, uint64_t records);

// `vmatrace report FILE --faults [--json|--folded]`: page-fault hotspots.
struct ReportOptions {
  std::string path;
  bool faults = false;
  bool malloc = false;                      // --malloc: call sites ranked by heap/mmap growth
  bool rss = false;                         // --rss: resident growth by VMA, kind and creator
  std::optional<std::string> since, until;  // --rss: the interval
  bool json = false, folded = false;
  std::optional<uint32_t> pid;
  size_t top = 20;
  std::string interval = "100ms";
  std::optional<std::string> html;      // --html OUT: the interactive timeline page
  std::optional<std::string> pprof;     // --pprof OUT: malloc growth (and --faults) as a pprof profile
  std::optional<std::string> perfetto;  // --perfetto OUT: the whole recording as a Perfetto trace
  bool force = false;                   // replace an existing --html/--pprof/--perfetto OUT (never through a link)
  SymbolSources symbols;                // --debug-dir, --debuginfod
};
int run_report(const ReportOptions& opts);
// `report FILE --pprof OUT` or `--perfetto OUT`: checks the options, then
// runs one of the two below (report_export.cpp). pid: --pid (0: all).
int run_export_report(ReportOptions& rep, int pid);
// `report FILE --malloc --folded`: growth stacks, folded (report_export.cpp).
int run_malloc_folded_report(ReportOptions& rep, int pid);
// `vmatrace report FILE --pprof OUT.pb.gz [--faults]` (report_export.cpp).
int run_pprof_report(const ReportOptions& opts);
// `vmatrace report FILE --perfetto OUT.pftrace` (report_export.cpp).
int run_perfetto_report(const ReportOptions& opts);
// Writes data to path: O_EXCL unless force (then truncates), never through a
// symlink; UserError naming --force when the file exists.
void write_output_file(const std::string& path, std::string_view data, bool force);
// `vmatrace report FILE --html OUT.html` (report_html.cpp).
int run_html_report(const ReportOptions& opts);

// `vmatrace --version`: version, git commit, libbpf, the BPF object's SHA-256 (version.cpp).
std::string version_text();

int run_cli(int argc, char** argv);

}  // namespace vmatrace
