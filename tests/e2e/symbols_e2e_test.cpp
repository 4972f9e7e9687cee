// Symbols beyond the symbol table (docs/malloc.md, "How symbols are found"):
//  - Debian's libc.so.6 is stripped of its DWARF; with libc6-dbg installed
//    its debug info lives apart, in /usr/lib/debug/.build-id/xx/yyyy.debug.
//    libdw's standard find_debuginfo (the symbolizer's Dwfl callbacks,
//    src/sym/unwinder.cpp) finds it by build id, so malloc growth frames
//    inside libc get names and source lines.
//  - JIT code: node --perf-basic-prof writes /tmp/perf-PID.map; frames in
//    that code are named from it, live and, from the copy the recording
//    keeps, in a replay after the file is gone.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "e2e_util.h"
#include "sym/build_id.h"

namespace {

// The C library the workloads run with (Debian's multiarch path).
constexpr const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

TEST(Symbols, LibcFramesGetSourceLinesFromSeparateDebugInfo) {
  // The premise: libc.so.6 itself has no line table, its debug file does.
  auto id = vmatrace::read_build_id(kLibc);
  ASSERT_TRUE(id.has_value() && id->size() > 2) << "libc has no build id";
  const std::string debug_file = "/usr/lib/debug/.build-id/" + id->substr(0, 2) + "/" + id->substr(2) + ".debug";
  struct stat st;
  ASSERT_EQ(::stat(debug_file.c_str(), &st), 0) << debug_file << " missing: install libc6-dbg (scripts/setup.sh)";
  auto sections = e2e::run_command({"/usr/bin/readelf", "-S", "--wide", kLibc});
  ASSERT_EQ(sections.status, 0) << e2e::describe(sections);
  ASSERT_EQ(sections.out.find(".debug_line"), std::string::npos) << "libc.so.6 is not stripped here";

  e2e::TempDir dir;
  auto r =
      e2e::run_command(e2e::vmatrace_argv({"trace", "--json", "--", e2e::workload("mallocgrowth"), dir.file("steps")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  // Frames of libc's allocator in the growth stacks: name, file and line.
  const std::regex frame(
      R"re(\{"pc":"0x[0-9a-f]+","function":"([^"]*)","offset":\d+,"file":"([^"]*)","line":(\d+),"module":"([^"]*)"\})re");
  std::set<std::string> libc_functions_with_lines;
  size_t growths = 0;
  for (const auto& line : e2e::split_lines(r.out)) {
    if (line.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
    growths++;
    for (std::sregex_iterator it(line.begin(), line.end(), frame), end; it != end; ++it) {
      const auto& m = *it;
      if (m[4] != kLibc) continue;
      if (m[2] == "./malloc/malloc.c" && std::stoi(m[3]) > 0) libc_functions_with_lines.insert(m[1]);
    }
  }
  ASSERT_GT(growths, 0u) << r.out.substr(0, 2000);
  EXPECT_TRUE(libc_functions_with_lines.count("sysmalloc")) << r.out.substr(0, 4000);
  EXPECT_TRUE(libc_functions_with_lines.count("_int_malloc")) << r.out.substr(0, 4000);
}

// Growth stacks' frames as (function, pc, module), from --json output.
struct Frame {
  std::string function, module;
  uint64_t pc = 0;
};
std::vector<Frame> growth_frames(const std::string& json) {
  const std::regex frame(
      R"re(\{"pc":"0x([0-9a-f]+)","function":(null|"([^"]*)"),"offset":\d+,"file":[^,]*,"line":[^,]*,"module":"([^"]*)"\})re");
  std::vector<Frame> out;
  for (const auto& line : e2e::split_lines(json)) {
    if (line.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), frame), end; it != end; ++it)
      out.push_back({(*it)[3], (*it)[4], std::stoull((*it)[1], nullptr, 16)});
  }
  return out;
}

// A JS function that grows memory once V8 has compiled it: each call
// allocates a 1 MiB ArrayBuffer (node callocs it: an mmap past 128 KiB).
constexpr const char* kGrowJs =
    "const keep = [];\n"
    "function growFromJit(i) {\n"
    "  const b = new ArrayBuffer(1 << 20);\n"
    "  new Uint8Array(b)[i % 1024] = 1;\n"
    "  keep.push(b);\n"
    "  if (keep.length > 64) keep.shift();\n"
    "}\n"
    "for (let i = 0; i < 20000; i++) growFromJit(i);\n";

// The JIT frames named growFromJit, each checked against the perf map the
// runtime wrote (ground truth): the pc lies in an entry of that name.
size_t check_jit_frames(const std::vector<Frame>& frames,
                        const std::map<uint64_t, std::pair<uint64_t, std::string>>& map, const std::string& where) {
  size_t named = 0;
  for (const auto& f : frames) {
    if (f.module != "[jit]") continue;
    auto it = map.upper_bound(f.pc - 1);
    bool inside = it != map.begin() && (--it, f.pc - 1 - it->first < it->second.first);
    EXPECT_TRUE(inside && it->second.second == f.function)
        << where << ": " << f.function << " at 0x" << std::hex << f.pc;
    if (f.function.find("growFromJit") != std::string::npos) named++;
  }
  return named;
}

TEST(Symbols, JitFramesNamedFromPerfMapLiveAndInReplay) {
  e2e::TempDir dir;
  const std::string js = dir.file("grow.js");
  e2e::write_file(js, kGrowJs);
  const std::string rec = dir.file("jit.vmat");
  // --perf-basic-prof also writes V8's log (isolate-*.log in the working directory otherwise).
  const std::string v8_log = "--logfile=" + dir.file("v8.log");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", "/usr/bin/node", "--perf-basic-prof", v8_log,
                                                "--no-logfile-per-isolate", js}),
                            std::chrono::seconds(120));
  ASSERT_EQ(r.status, 0) << e2e::describe(r) << " (node missing? scripts/setup.sh installs nodejs)";
  // node's pid, from its jit_map record.
  auto dump = e2e::run_command(e2e::vmatrace_argv({"replay", "--records", rec}));
  ASSERT_EQ(dump.status, 0) << e2e::describe(dump);
  const std::regex jit_rec(R"re(^\d+ (\d+)/\d+ jit_map)re");
  std::smatch m;
  std::set<std::string> pids;
  for (const auto& line : e2e::split_lines(dump.out))
    if (std::regex_search(line, m, jit_rec)) pids.insert(m[1]);
  ASSERT_EQ(pids.size(), 1u) << "one jit_map record set (node's) expected:\n" << dump.out.substr(0, 3000);
  // What the file reveals says so (the names can hold script paths).
  auto priv = e2e::run_command(e2e::vmatrace_argv({"info", "--privacy", rec}));
  ASSERT_EQ(priv.status, 0) << e2e::describe(priv);
  EXPECT_TRUE(std::regex_search(priv.out, std::regex("jit names: +[1-9][0-9]* names of generated code"))) << priv.out;
  const std::string perf_map = "/tmp/perf-" + *pids.begin() + ".map";
  // Ground truth: the perf map node wrote.
  auto text = e2e::read_file(perf_map);
  ASSERT_TRUE(text.has_value()) << perf_map;
  std::map<uint64_t, std::pair<uint64_t, std::string>> truth;
  for (const auto& line : e2e::split_lines(*text)) {
    unsigned long long start = 0, size = 0;
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%llx %llx %n", &start, &size, &name_at) == 2 && name_at > 0)
      truth[start] = {size, line.substr(static_cast<size_t>(name_at))};
  }
  ASSERT_FALSE(truth.empty()) << perf_map;
  // Offline: the file is gone, the recording's copy names the frames.
  ASSERT_EQ(std::remove(perf_map.c_str()), 0) << perf_map;
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}), std::chrono::seconds(120));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  auto frames = growth_frames(replay.out);
  ASSERT_FALSE(frames.empty()) << replay.out.substr(0, 2000);
  EXPECT_GT(check_jit_frames(frames, truth, "replay"), 0u) << "no growth stack passes through growFromJit";

  // Live: trace reads the perf map as the frames come.
  auto live = e2e::run_command(e2e::vmatrace_argv({"trace", "--json", "--", "/usr/bin/node", "--perf-basic-prof",
                                                   v8_log, "--no-logfile-per-isolate", js}),
                               std::chrono::seconds(120));
  ASSERT_EQ(live.status, 0) << e2e::describe(live);
  std::set<std::string> live_names;
  for (const auto& f : growth_frames(live.out))
    if (f.module == "[jit]") live_names.insert(f.function);
  bool grow_named = false;
  for (const auto& n : live_names) grow_named |= n.find("growFromJit") != std::string::npos;
  EXPECT_TRUE(grow_named) << live.out.substr(0, 3000);
  // Its perf map: ours to remove (node's pid is in its process events).
  const std::regex node_pid(R"re("pid":(\d+),"tid":\d+,"comm":"node")re");
  if (std::regex_search(live.out, m, node_pid)) std::remove(("/tmp/perf-" + m[1].str() + ".map").c_str());
}

}  // namespace
