#pragma once
// Names for code that a runtime generated in anonymous memory (JIT): the
// /tmp/perf-PID.map a runtime writes when asked (node --perf-basic-prof, a
// JVM with a perf-map agent, python -X perf), as perf reads it
// (tools/perf/Documentation/jit-interface.txt): one "START SIZE name" line
// per piece of code, hex, appended as code is made.
//
// Live, the malloc stage reads a process's map when a frame is in no
// module; the session stores each process's map in the recording (jit_map
// records, at its exit and at the trace end) so that replay names those
// frames offline, after the file is gone.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.h"

namespace vmatrace {

// The entries of perf map text; lines that do not parse are skipped.
std::vector<JitCode> parse_perf_map(std::string_view text);

// The code ranges of one process. A later entry replaces the ones it
// overlaps: the runtime freed that code and put new code there.
class JitTable {
 public:
  void add(JitCode c);
  const JitCode* find(uint64_t pc) const;
  std::vector<JitCode> entries() const;  // by address
  size_t size() const { return by_start_.size(); }

 private:
  std::map<uint64_t, JitCode> by_start_;
};

// Where process pid's perf map is: through its root while it lives (a
// container's own /tmp), else /tmp here.
std::string perf_map_path(uint32_t pid);

// A live process's perf map, read as it grows: each refresh() adds the
// complete lines appended since the last one.
class PerfMapFile {
 public:
  explicit PerfMapFile(std::string path) : path_(std::move(path)) {}
  // false when there is no such file (the runtime was not asked for one).
  bool refresh(JitTable& table);

 private:
  std::string path_;
  uint64_t offset_ = 0;
  std::string partial_;  // a line the runtime had not finished writing
};

// Every process's JIT names, as the malloc stage looks frames up.
class JitSymbols {
 public:
  // live: the processes exist; their perf map files are read when a pc is
  // not found in what was recorded.
  explicit JitSymbols(bool live) : live_(live) {}

  // A jit_map record: part of pid's table as written at ts.
  void add_record(uint32_t pid, uint64_t ts, std::span<const JitCode> code);
  // The code holding pc in process pid at time ts: the recorded table of
  // that process (the first written at or after ts: a later process with
  // the same pid has its own), else, live, its perf map file as it is now.
  const JitCode* find(uint32_t pid, uint64_t ts, uint64_t pc);
  // The process ended or exec'd: its live file is not read again.
  void forget_live(uint32_t pid) { live_files_.erase(pid); }

 private:
  bool live_;
  std::map<uint32_t, std::map<uint64_t, JitTable>> recorded_;  // pid -> ts -> table
  struct LiveFile {
    PerfMapFile file;
    JitTable table;
  };
  std::map<uint32_t, LiveFile> live_files_;
};

}  // namespace vmatrace
