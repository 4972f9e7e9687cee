#pragma once
// Names for code that a runtime generated in anonymous memory (JIT), from
// the two files perf reads (tools/perf/Documentation/jit-interface.txt and
// jitdump-specification.txt):
//  - /tmp/perf-PID.map, written when asked (node --perf-basic-prof, a JVM
//    with a perf-map agent, python -X perf): one "START SIZE name" line per
//    piece of code, hex, appended as code is made;
//  - jit-PID.dump (node --perf-prof, a JVM's jvmti agent): binary records,
//    JIT_CODE_LOAD naming code and JIT_CODE_MOVE moving it. The runtime
//    mmaps the file (executable) so that perf finds it among its mappings;
//    so do we.
// PID is the process's own pid, in its PID namespace, and both files are
// in its root (a container's own /tmp).
//
// Live, the malloc stage reads a process's files when a frame is in no
// module; the session stores each process's names in the recording
// (jit_map records, at its exit and at the trace end) so that replay names
// those frames offline, after the files are gone.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.h"
#include "util/unique_fd.h"

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

// perf's jitdump as it grows: the JIT_CODE_LOAD and JIT_CODE_MOVE records
// appended since the last read go into table, in order (the code bytes a
// load carries are skipped, not read). A record the runtime is still
// writing waits for the next read.
class JitDumpReader {
 public:
  // false once fd is not a jitdump of this machine's byte order, or holds
  // a malformed record: nothing more is read from it.
  bool read(int fd, JitTable& table);

 private:
  uint64_t pos_ = 0;  // the next record (0: the header)
  bool bad_ = false;
};

// Where one process's JIT names are: its perf map and its jitdump, read as
// they grow. Made while the process lives: its own pid and root are read
// then, and each file, once found, is held open, so that both can be read
// after the process (and its container's mounts) are gone.
class JitSource {
 public:
  // pid: the host's. A process that is already gone has /tmp/perf-PID.map
  // here.
  explicit JitSource(uint32_t pid);
  // Adds what both files gained since the last call; false when the
  // process has neither (the runtime was not asked for one). find_jitdump:
  // look for a jitdump among its mappings (/proc/PID/maps) if none is
  // known yet.
  bool refresh(JitTable& table, bool find_jitdump = true);
  // Opens the perf map if it exists now (held from then on, until another
  // file takes its name).
  void open_perf_map();
  // The jitdump at path, as the process sees it (a mapping of the model's
  // layout); ignored once one is open or when its name is not
  // "jit-NSPID.dump" of this process.
  void open_jitdump(std::string_view path);
  bool has_perf_map() const { return static_cast<bool>(map_fd_); }
  bool has_jitdump() const { return static_cast<bool>(dump_); }
  bool is_jitdump_name(std::string_view path) const;

 private:
  bool refresh_perf_map(JitTable& table);
  void find_jitdump_in_maps();
  UniqueFd open_in_root(const std::string& path) const;

  uint32_t pid_ = 0, nspid_ = 0;
  UniqueFd root_;  // O_PATH, held for a process in another mount namespace or root
  UniqueFd map_fd_;
  uint64_t map_offset_ = 0;
  std::string map_partial_;  // a line the runtime had not finished writing
  UniqueFd dump_;
  JitDumpReader dump_reader_;
};

// Every process's JIT names, as the malloc stage looks frames up.
class JitSymbols {
 public:
  // live: the processes exist; their perf map files are read when a pc is
  // not found in what was recorded.
  explicit JitSymbols(bool live) : live_(live) {}

  // A jit_map record: part of pid's table as written at ts.
  void add_record(uint32_t pid, uint64_t ts, std::span<const JitCode> code);
  // Offline: `load` adds the recording's jit_map records (a pass over the
  // whole file), run at the first find() instead of before the replay: a
  // replay whose frames all lie in files never pays for that pass.
  void load_recorded_on_first_find(std::function<void(JitSymbols&)> load) { loader_ = std::move(load); }
  // The code holding pc in process pid at time ts: the recorded table of
  // that process (the first written at or after ts: a later process with
  // the same pid has its own), else, live, its perf map and jitdump as they
  // are now. jitdump: the path of a jitdump among its mappings, if any
  // (found without /proc, which no longer has a process that just exited).
  const JitCode* find(uint32_t pid, uint64_t ts, uint64_t pc, std::string_view jitdump = {});
  // The process ended or exec'd: its live file is not read again.
  void forget_live(uint32_t pid) { live_files_.erase(pid); }

 private:
  bool live_;
  std::function<void(JitSymbols&)> loader_;                    // load_recorded_on_first_find(), until it ran
  std::map<uint32_t, std::map<uint64_t, JitTable>> recorded_;  // pid -> ts -> table
  struct LiveFile {
    JitSource source;
    JitTable table;
    uint64_t maps_looked_ns = 0;  // when /proc/PID/maps was last searched for a jitdump
  };
  std::map<uint32_t, LiveFile> live_files_;
};

}  // namespace vmatrace
