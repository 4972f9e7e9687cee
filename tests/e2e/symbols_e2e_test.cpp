// Symbols beyond the symbol table (docs/malloc.md, "How symbols are found"):
//  - Debian's libc.so.6 is stripped of its DWARF; with libc6-dbg installed
//    its debug info lives apart, in /usr/lib/debug/.build-id/xx/yyyy.debug.
//    libdw's standard find_debuginfo (the symbolizer's Dwfl callbacks,
//    src/sym/unwinder.cpp) finds it by build id, so malloc growth frames
//    inside libc get names and source lines.
//  - --debug-dir: a stripped binary's frames named from its debug file
//    (objcopy --only-keep-debug) under DIR/.build-id/, also in a replay
//    after the binary is gone.
//  - debuginfod: never asked unless --debuginfod; then one failed server
//    costs one bounded wait and one warning.
//  - JIT code: node --perf-basic-prof writes /tmp/perf-PID.map; frames in
//    that code are named from it, live and, from the copy the recording
//    keeps, in a replay after the file is gone.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// The build id as libdw's build-id directories spell it: xx/yyyy.
std::string build_id_path(const std::string& dir, const std::string& id) {
  return dir + "/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
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

// A TCP server on loopback that never answers: the connections a
// debuginfod client made to it are counted by the kernel's accept queue.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 256) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "loopback server: " << std::strerror(errno);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Connections made since the last call.
  size_t connections() {
    size_t n = 0;
    for (int c; (c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; n++) ::close(c);
    return n;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(Symbols, DebuginfodAskedOnlyWithTheOptionThenOnceWithOneWarning) {
  // The premise: ls has no debug file here, so libdw's last resort would
  // be the servers of DEBUGINFOD_URLS (Debian's libdebuginfod-common sets
  // it for login shells).
  const std::string ls = "/usr/bin/ls";
  auto id = vmatrace::read_build_id(ls);
  ASSERT_TRUE(id.has_value() && id->size() > 2);
  struct stat st;
  ASSERT_NE(::stat(build_id_path("/usr/lib/debug", *id).c_str(), &st), 0) << "ls has a local debug file here";

  e2e::TempDir dir;
  SilentServer server;
  // A fresh client cache: no remembered miss spares a request.
  auto with_env = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "DEBUGINFOD_TIMEOUT", "DEBUGINFOD_URLS=" + server.url(),
                                     "DEBUGINFOD_CACHE_PATH=" + dir.file("cache")};
    for (auto& a : e2e::vmatrace_argv(std::move(args))) argv.push_back(std::move(a));
    return argv;
  };
  auto ls_frames = [&](const std::string& json) {
    size_t n = 0;
    for (const auto& f : growth_frames(json)) n += f.module == ls;
    return n;
  };
  const std::vector<std::string> workload = {ls, "-R", "/usr/share/doc"};

  // Live, without --debuginfod: ls's frames are symbolized (locally), the
  // server never hears of it.
  std::vector<std::string> args = {"trace", "--json", "--"};
  args.insert(args.end(), workload.begin(), workload.end());
  auto live = e2e::run_command(with_env(args), std::chrono::seconds(120));
  ASSERT_EQ(live.status, 0) << e2e::describe(live);
  EXPECT_GT(ls_frames(live.out), 0u) << "no growth frame in ls:\n" << live.out.substr(0, 2000);
  EXPECT_EQ(server.connections(), 0u) << "a live trace asked debuginfod without --debuginfod";

  const std::string rec = dir.file("ls.vmat");
  args = {"record", "-o", rec, "--"};
  args.insert(args.end(), workload.begin(), workload.end());
  auto r = e2e::run_command(with_env(args), std::chrono::seconds(120));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto replay = e2e::run_command(with_env({"replay", "--json", rec}), std::chrono::seconds(120));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  const size_t frames = ls_frames(replay.out);
  EXPECT_GT(frames, 0u) << replay.out.substr(0, 2000);
  EXPECT_EQ(server.connections(), 0u) << "record or replay asked debuginfod without --debuginfod";

  // Asked: the server is contacted, does not answer, and after one bounded
  // wait and one warning the replay goes on from local files, the same
  // frames with their modules.
  auto asked = e2e::run_command(with_env({"replay", "--json", "--debuginfod", rec}), std::chrono::seconds(120));
  ASSERT_EQ(asked.status, 0) << e2e::describe(asked);
  const size_t asked_connections = server.connections();
  EXPECT_GE(asked_connections, 1u) << "--debuginfod never asked the server";
  size_t warnings = 0;
  for (const auto& line : e2e::split_lines(asked.err)) warnings += line.find("debuginfod") != std::string::npos;
  EXPECT_EQ(warnings, 1u) << asked.err;
  EXPECT_NE(asked.err.find(server.url()), std::string::npos) << asked.err;
  EXPECT_EQ(ls_frames(asked.out), frames);
  std::printf("debuginfod: %zu connection(s) with --debuginfod, none without\n", asked_connections);
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

// A growth frame with its source position, from --json output.
struct SourceFrame {
  std::string function, file, module;
  uint64_t offset = 0;
  int line = 0;
};
std::vector<SourceFrame> source_frames(const std::string& json, const std::string& module) {
  const std::regex frame(
      R"re(\{"pc":"0x[0-9a-f]+","function":(null|"([^"]*)"),"offset":(\d+),"file":(null|"([^"]*)"),"line":(null|\d+),"module":"([^"]*)"\})re");
  std::vector<SourceFrame> out;
  for (const auto& line : e2e::split_lines(json)) {
    if (line.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), frame), end; it != end; ++it) {
      const auto& m = *it;
      if (m[7] != module) continue;
      out.push_back({m[2], m[5], m[7], std::stoull(m[3]), m[6] == "null" ? 0 : std::stoi(m[6])});
    }
  }
  return out;
}

TEST(Symbols, DebugDirNamesFramesOfStrippedBinaryAlsoAfterItIsDeleted) {
  e2e::TempDir dir;
  // A small program built with -g (the mallocgrowth workload): its debug
  // info goes into DIR/.build-id/xx/yyyy.debug, a stripped copy is what runs.
  const std::string full = e2e::workload("mallocgrowth");
  const std::string bin = dir.file("mallocgrowth-stripped");
  auto strip = e2e::run_command({"/usr/bin/strip", "--strip-all", "-o", bin, full});
  ASSERT_EQ(strip.status, 0) << e2e::describe(strip);
  auto sections = e2e::run_command({"/usr/bin/readelf", "-S", "--wide", bin});
  ASSERT_EQ(sections.status, 0) << e2e::describe(sections);
  ASSERT_EQ(sections.out.find(".symtab"), std::string::npos) << "not stripped";
  ASSERT_EQ(sections.out.find(".debug_line"), std::string::npos) << "not stripped";
  auto id = vmatrace::read_build_id(bin);
  ASSERT_TRUE(id.has_value() && id->size() > 2) << bin << " has no build id";
  ASSERT_EQ(id, vmatrace::read_build_id(full));
  const std::string debug_dir = dir.file("debug");
  const std::string debug_file = build_id_path(debug_dir, *id);
  ASSERT_EQ(e2e::run_command({"/bin/mkdir", "-p", debug_dir + "/.build-id/" + id->substr(0, 2)}).status, 0);
  auto oc = e2e::run_command({"/usr/bin/objcopy", "--only-keep-debug", full, debug_file});
  ASSERT_EQ(oc.status, 0) << e2e::describe(oc);

  const std::string rec = dir.file("r.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", bin, dir.file("steps")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);

  // Ground truth for a named frame: the function's address in the
  // unstripped binary (nm) plus the frame's offset is the return address;
  // addr2line on the call before it gives the source line.
  auto nm = e2e::run_command({"/usr/bin/nm", "--defined-only", full});
  ASSERT_EQ(nm.status, 0) << e2e::describe(nm);
  std::map<std::string, uint64_t> symbols;
  for (const auto& line : e2e::split_lines(nm.out)) {
    unsigned long long addr = 0;
    char type = 0;
    char name[256];
    if (std::sscanf(line.c_str(), "%llx %c %255s", &addr, &type, name) == 3) symbols[name] = addr;
  }
  // "/path/mallocgrowth.c:33 (discriminator 1)" -> ("mallocgrowth.c", 33)
  auto file_line = [](std::string s) {
    s = s.substr(0, s.find('\n'));
    s = s.substr(0, s.find(" ("));
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos) return std::pair<std::string, int>{};
    std::string file = s.substr(0, colon);
    file = file.substr(file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1);
    return std::pair{file, std::atoi(s.c_str() + colon + 1)};
  };
  auto check_named = [&](const std::string& out, const std::string& what) {
    auto frames = source_frames(out, bin);
    EXPECT_FALSE(frames.empty()) << what << ": no growth frame in " << bin << ":\n" << out.substr(0, 3000);
    size_t checked = 0;
    bool grow = false;
    for (const auto& f : frames) {
      auto s = symbols.find(f.function);
      if (f.function.empty() || s == symbols.end()) {
        ADD_FAILURE() << what << ": frame '" << f.function << "' of " << bin << " is not a symbol of " << full;
        continue;
      }
      grow |= f.function == "small_mallocs_grow_heap";
      char addr[32];
      std::snprintf(addr, sizeof(addr), "%#llx", static_cast<unsigned long long>(s->second + f.offset - 1));
      auto a2l = e2e::run_command({"/usr/bin/addr2line", "-e", full, addr});
      EXPECT_EQ(a2l.status, 0) << e2e::describe(a2l);
      auto [file, line] = file_line(a2l.out);
      const std::string base = f.file.substr(f.file.rfind('/') == std::string::npos ? 0 : f.file.rfind('/') + 1);
      // "??:?" (_start, from crt1.o without debug info): no line either.
      EXPECT_TRUE(line == 0 ? f.file.empty() && f.line == 0 : base == file && f.line == line)
          << what << ": " << f.function << "+" << f.offset << " at " << f.file << ":" << f.line << ", addr2line says "
          << a2l.out;
      checked++;
    }
    EXPECT_TRUE(grow) << what << ": no frame in small_mallocs_grow_heap:\n" << out.substr(0, 3000);
    return frames;
  };

  // The stripped binary in place: libdw finds the debug file by build id
  // under --debug-dir (as under /usr/lib/debug).
  auto present = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", "--debug-dir", debug_dir, rec}));
  ASSERT_EQ(present.status, 0) << e2e::describe(present);
  check_named(present.out, "binary present");

  // Gone (replayed on another machine, or deleted): its frames keep their
  // module and offset, and --debug-dir names them from the recording's build id.
  ASSERT_EQ(std::remove(bin.c_str()), 0);
  auto without = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}));
  ASSERT_EQ(without.status, 0) << e2e::describe(without);
  // Never a blank: module and offset from its load base (the ELF address
  // here: the first segment of a PIE is at file offset 0).
  auto bare = source_frames(without.out, bin);
  ASSERT_FALSE(bare.empty()) << "no growth frame in " << bin << ":\n" << without.out.substr(0, 3000);
  for (const auto& f : bare) EXPECT_TRUE(f.function.empty()) << f.function << ": named without binary or debug file?";
  auto with = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", "--debug-dir", debug_dir, rec}));
  ASSERT_EQ(with.status, 0) << e2e::describe(with);
  auto named = check_named(with.out, "binary gone");
  ASSERT_EQ(named.size(), bare.size());
  for (size_t i = 0; i < named.size(); i++)
    if (symbols.count(named[i].function)) {
      EXPECT_EQ(symbols[named[i].function] + named[i].offset, bare[i].offset)
          << named[i].function << "+" << named[i].offset << " vs module offset " << bare[i].offset;
    }
  // report takes the same option.
  auto rep = e2e::run_command(e2e::vmatrace_argv({"report", rec, "--malloc", "--debug-dir", debug_dir}));
  ASSERT_EQ(rep.status, 0) << e2e::describe(rep);
  EXPECT_NE(rep.out.find("small_mallocs_grow_heap"), std::string::npos) << rep.out;
  // Bad input: one line, non-zero exit.
  auto bad = e2e::run_command(e2e::vmatrace_argv({"replay", "--debug-dir", dir.file("nope"), rec}));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--debug-dir"), std::string::npos) << bad.err;
}

TEST(Symbols, GnuDebuglinkNextToStrippedBinaryNamesFrames) {
  // The other half of libdw's local search (done by sym/debuginfo.cpp now
  // that the network step is left out): the .gnu_debuglink name, next to
  // the binary. Only a file with the binary's build id is taken.
  e2e::TempDir dir;
  const std::string full = e2e::workload("mallocgrowth");
  const std::string bin = dir.file("mallocgrowth-linked");
  const std::string debug = dir.file("mallocgrowth-linked.debug");
  auto oc = e2e::run_command({"/usr/bin/objcopy", "--only-keep-debug", full, debug});
  ASSERT_EQ(oc.status, 0) << e2e::describe(oc);
  auto strip = e2e::run_command({"/usr/bin/strip", "--strip-all", "-o", bin, full});
  ASSERT_EQ(strip.status, 0) << e2e::describe(strip);
  auto link = e2e::run_command({"/usr/bin/objcopy", "--add-gnu-debuglink=" + debug, bin});
  ASSERT_EQ(link.status, 0) << e2e::describe(link);
  const std::string rec = dir.file("r.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", bin, dir.file("steps")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto named = [&]() {
    auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}));
    EXPECT_EQ(replay.status, 0) << e2e::describe(replay);
    std::set<std::string> functions;
    size_t frames = 0;
    for (const auto& f : source_frames(replay.out, bin)) {
      frames++;
      if (!f.function.empty() && f.line > 0) functions.insert(f.function);
    }
    EXPECT_GT(frames, 0u) << replay.out.substr(0, 2000);
    return functions;
  };
  EXPECT_TRUE(named().count("small_mallocs_grow_heap")) << "not named through .gnu_debuglink";
  // A stale file of that name (another build: another build id) is not used.
  auto other = e2e::run_command({"/usr/bin/objcopy", "--only-keep-debug", e2e::workload("demo"), debug});
  ASSERT_EQ(other.status, 0) << e2e::describe(other);
  EXPECT_TRUE(named().empty()) << "a debug file of another build was taken";
}

}  // namespace
