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
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
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

// Source lines kept across runs (sym/line_cache.h): the first trace finds
// libc's lines in its DWARF and keeps them under its build id; the next
// takes them from there without reading any DWARF (shown by a file name
// changed in the cache, which only the cache can answer); with the cache
// off, or through a symbolic link, lines come from the DWARF again.
TEST(Symbols, SourceLinesKeptAcrossRunsByBuildId) {
  auto id = vmatrace::read_build_id(kLibc);
  ASSERT_TRUE(id.has_value() && id->size() >= 32) << "libc has no build id";
  e2e::TempDir dir;
  const std::string cache = dir.file("cache");
  const std::string kept = cache + "/" + id->substr(0, 32) + ".lines";
  auto trace = [&](const std::string& cache_dir, const std::string& steps) {
    std::vector<std::string> argv = {"/usr/bin/env", "VMATRACE_CACHE_DIR=" + cache_dir};
    for (auto& a : e2e::vmatrace_argv({"trace", "--json", "--", e2e::workload("mallocgrowth"), dir.file(steps)}))
      argv.push_back(std::move(a));
    return e2e::run_command(argv, std::chrono::seconds(120));
  };
  // libc's frames of the growth stacks: function -> "file:line".
  auto libc_lines = [](const std::string& json) {
    const std::regex frame(
        R"re(\{"pc":"0x[0-9a-f]+","function":"([^"]*)","offset":\d+,"file":"([^"]*)","line":(\d+),"module":"([^"]*)"\})re");
    std::map<std::string, std::string> out;
    for (const auto& line : e2e::split_lines(json)) {
      if (line.find("\"event\":\"malloc_growth\"") == std::string::npos) continue;
      for (std::sregex_iterator it(line.begin(), line.end(), frame), end; it != end; ++it)
        if ((*it)[4] == kLibc) out[(*it)[1]] = std::string((*it)[2]) + ":" + std::string((*it)[3]);
    }
    return out;
  };

  auto first = trace(cache, "steps1");
  ASSERT_EQ(first.status, 0) << e2e::describe(first);
  const auto found = libc_lines(first.out);
  ASSERT_TRUE(found.count("sysmalloc")) << first.out.substr(0, 3000);
  EXPECT_EQ(found.at("sysmalloc").rfind("./malloc/", 0), 0u) << found.at("sysmalloc");
  auto text = e2e::read_file(kept);
  ASSERT_TRUE(text.has_value()) << kept << " was not written";
  EXPECT_NE(text->find(" ./malloc/"), std::string::npos) << *text;
  struct stat st;
  ASSERT_EQ(::stat(kept.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The kept lines answer: each file renamed in the cache ("OFFSET LINE
  // LENGTH FILE"), renamed in the output.
  std::string renamed;
  for (const auto& line : e2e::split_lines(*text)) {
    if (line.empty()) continue;
    std::istringstream in(line);
    std::string offset, lineno;
    size_t length = 0;
    in >> offset >> lineno >> length;
    const std::string file = line.substr(line.size() - length);
    renamed += offset + " " + lineno + " " + std::to_string(length + 5) + " /kept" + file + "\n";
  }
  e2e::write_file(kept, renamed);
  ::chmod(kept.c_str(), 0600);
  auto second = trace(cache, "steps2");
  ASSERT_EQ(second.status, 0) << e2e::describe(second);
  const auto again = libc_lines(second.out);
  ASSERT_TRUE(again.count("sysmalloc")) << second.out.substr(0, 3000);
  for (const auto& [fn, where] : found) {
    if (!again.count(fn)) continue;
    EXPECT_EQ(again.at(fn), "/kept" + where) << fn << " was not answered from the cache";
  }
  EXPECT_EQ(second.err.find("symbol cache"), std::string::npos) << second.err;

  // Off: from the DWARF, and the cache is left as it was.
  auto off = trace("off", "steps3");
  ASSERT_EQ(off.status, 0) << e2e::describe(off);
  EXPECT_EQ(libc_lines(off.out).at("sysmalloc"), found.at("sysmalloc"));
  EXPECT_EQ(e2e::read_file(kept).value_or(""), renamed);

  // Through a symbolic link: refused in one line, lines from the DWARF.
  const std::string link = dir.file("link");
  ASSERT_EQ(::symlink(cache.c_str(), link.c_str()), 0);
  auto linked = trace(link, "steps4");
  ASSERT_EQ(linked.status, 0) << e2e::describe(linked);
  EXPECT_EQ(libc_lines(linked.out).at("sysmalloc"), found.at("sysmalloc"));
  size_t warnings = 0;
  for (const auto& line : e2e::split_lines(linked.err)) warnings += line.find("symbol cache") != std::string::npos;
  EXPECT_EQ(warnings, 1u) << linked.err;
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
                        const std::map<uint64_t, std::pair<uint64_t, std::string>>& map, const std::string& where,
                        const std::string& want = "growFromJit") {
  size_t named = 0;
  for (const auto& f : frames) {
    if (f.module != "[jit]") continue;
    auto it = map.upper_bound(f.pc - 1);
    bool inside = it != map.begin() && (--it, f.pc - 1 - it->first < it->second.first);
    EXPECT_TRUE(inside && it->second.second == f.function)
        << where << ": " << f.function << " at 0x" << std::hex << f.pc;
    if (f.function.find(want) != std::string::npos) named++;
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
  // A fixed mmap threshold (glibc raises it after the first free of an
  // mmapped chunk otherwise): each 1 MiB buffer is an mmap, so growths keep
  // coming after V8 compiled growFromJit, whatever the GC's timing.
  auto r = e2e::run_command(
      e2e::vmatrace_argv({"record", "-o", rec, "--", "/usr/bin/env", "MALLOC_MMAP_THRESHOLD_=131072", "/usr/bin/node",
                          "--perf-basic-prof", v8_log, "--no-logfile-per-isolate", js}),
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
  auto live = e2e::run_command(
      e2e::vmatrace_argv({"trace", "--json", "--", "/usr/bin/env", "MALLOC_MMAP_THRESHOLD_=131072", "/usr/bin/node",
                          "--perf-basic-prof", v8_log, "--no-logfile-per-isolate", js}),
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

// The defined symbols of an unstripped binary (nm), by name.
std::map<std::string, uint64_t> nm_symbols(const std::string& full) {
  auto nm = e2e::run_command({"/usr/bin/nm", "--defined-only", full});
  EXPECT_EQ(nm.status, 0) << e2e::describe(nm);
  std::map<std::string, uint64_t> symbols;
  for (const auto& line : e2e::split_lines(nm.out)) {
    unsigned long long addr = 0;
    char type = 0;
    char name[256];
    if (std::sscanf(line.c_str(), "%llx %c %255s", &addr, &type, name) == 3) symbols[name] = addr;
  }
  return symbols;
}

// "/path/mallocgrowth.c:33 (discriminator 1)" -> ("mallocgrowth.c", 33)
std::pair<std::string, int> addr2line_file_line(std::string s) {
  s = s.substr(0, s.find('\n'));
  s = s.substr(0, s.find(" ("));
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return {};
  std::string file = s.substr(0, colon);
  file = file.substr(file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1);
  return {file, std::atoi(s.c_str() + colon + 1)};
}

// The growth frames of `bin` in --json output `out`, each checked against
// the unstripped binary `full`: the function's address there (nm) plus the
// frame's offset is the return address; addr2line on the call before it
// gives the source line the frame must show. One frame must be in
// small_mallocs_grow_heap.
std::vector<SourceFrame> check_against_addr2line(const std::string& out, const std::string& bin,
                                                 const std::string& full,
                                                 const std::map<std::string, uint64_t>& symbols,
                                                 const std::string& what) {
  auto frames = source_frames(out, bin);
  EXPECT_FALSE(frames.empty()) << what << ": no growth frame in " << bin << ":\n" << out.substr(0, 3000);
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
    auto [file, line] = addr2line_file_line(a2l.out);
    const std::string base = f.file.substr(f.file.rfind('/') == std::string::npos ? 0 : f.file.rfind('/') + 1);
    // "??:?" (_start, from crt1.o without debug info): no line either.
    EXPECT_TRUE(line == 0 ? f.file.empty() && f.line == 0 : base == file && f.line == line)
        << what << ": " << f.function << "+" << f.offset << " at " << f.file << ":" << f.line << ", addr2line says "
        << a2l.out;
  }
  EXPECT_TRUE(grow) << what << ": no frame in small_mallocs_grow_heap:\n" << out.substr(0, 3000);
  return frames;
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

  std::map<std::string, uint64_t> symbols = nm_symbols(full);
  auto check_named = [&](const std::string& out, const std::string& what) {
    return check_against_addr2line(out, bin, full, symbols, what);
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

// A TCP port free on loopback now (for a server that takes its port as an
// argument).
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

// GET http://127.0.0.1:port/path: the whole response (status line,
// headers, body), empty when nothing answers.
std::string http_get(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// The value of one line of a Prometheus text page ("name{labels} value").
uint64_t metric(const std::string& page, const std::string& name) {
  for (const auto& line : e2e::split_lines(page))
    if (line.starts_with(name + " ")) return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10);
  return 0;
}

TEST(Symbols, LocalDebuginfodServerNamesFramesOfStrippedBinary) {
  // A stripped binary whose debug file is nowhere on this machine but in
  // the directory a real debuginfod (Debian's) serves over loopback.
  e2e::TempDir dir;
  const std::string full = e2e::workload("mallocgrowth");
  const std::string bin = dir.file("mallocgrowth-remote");
  auto strip = e2e::run_command({"/usr/bin/strip", "--strip-all", "-o", bin, full});
  ASSERT_EQ(strip.status, 0) << e2e::describe(strip);
  auto id = vmatrace::read_build_id(bin);
  ASSERT_TRUE(id.has_value() && id->size() > 2) << bin << " has no build id";
  struct stat st;
  ASSERT_NE(::stat(build_id_path("/usr/lib/debug", *id).c_str(), &st), 0) << "a local debug file exists";
  const std::string served = dir.file("served");
  ASSERT_EQ(::mkdir(served.c_str(), 0755), 0);
  auto oc = e2e::run_command({"/usr/bin/objcopy", "--only-keep-debug", full, served + "/mallocgrowth.debug"});
  ASSERT_EQ(oc.status, 0) << e2e::describe(oc);

  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  // -F: scan the directory for ELF/DWARF files; no rescan, no grooming.
  e2e::Subprocess server({"/usr/bin/debuginfod", "-F", "-p", std::to_string(port), "-d", dir.file("db.sqlite"), "-t",
                          "0", "-g", "0", served});
  // Ready when it serves the build id (it has scanned the directory).
  const std::string buildid_url = "/buildid/" + *id + "/debuginfo";
  bool ready = false;
  for (int i = 0; i < 600 && !ready && !server.poll(); i++) {
    const std::string answer = http_get(port, buildid_url);
    ready = answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200");
    if (!ready) ::usleep(100'000);
  }
  ASSERT_TRUE(ready) << "debuginfod did not serve " << buildid_url
                     << " (scripts/setup.sh installs debuginfod): " << server.stderr_text();
  auto debuginfo_requests = [&] {
    return metric(http_get(port, "/metrics"), "http_requests_total{type=\"debuginfo\"}");
  };
  const uint64_t before = debuginfo_requests();

  const std::string rec = dir.file("r.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", bin, dir.file("steps")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto with_env = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "DEBUGINFOD_TIMEOUT", "DEBUGINFOD_URLS=" + url,
                                     "DEBUGINFOD_CACHE_PATH=" + dir.file("cache")};
    for (auto& a : e2e::vmatrace_argv(std::move(args))) argv.push_back(std::move(a));
    return argv;
  };

  // Not asked: the server hears nothing, the frames keep module + offset.
  auto plain = e2e::run_command(with_env({"replay", "--json", rec}), std::chrono::seconds(120));
  ASSERT_EQ(plain.status, 0) << e2e::describe(plain);
  EXPECT_EQ(debuginfo_requests(), before) << "replay asked debuginfod without --debuginfod";
  auto bare = source_frames(plain.out, bin);
  ASSERT_FALSE(bare.empty()) << plain.out.substr(0, 3000);
  for (const auto& f : bare)
    EXPECT_TRUE(f.function.empty() && f.file.empty()) << f.function << " named without debug info";

  // Asked: the debug file comes from the server; names and source lines
  // are addr2line's on the unstripped binary.
  auto asked = e2e::run_command(with_env({"replay", "--json", "--debuginfod", rec}), std::chrono::seconds(120));
  ASSERT_EQ(asked.status, 0) << e2e::describe(asked);
  EXPECT_GE(debuginfo_requests(), before + 1) << "--debuginfod did not ask the server";
  EXPECT_EQ(asked.err.find("debuginfod"), std::string::npos) << "a warning though the server answered: " << asked.err;
  auto named = check_against_addr2line(asked.out, bin, full, nm_symbols(full), "--debuginfod");
  EXPECT_EQ(named.size(), bare.size());
  size_t with_lines = 0;
  for (const auto& f : named) with_lines += f.line > 0;
  EXPECT_GT(with_lines, 0u) << "no source line came from the served debug file";
  std::printf("debuginfod: %zu frames of the stripped binary named, %zu with source lines\n", named.size(), with_lines);
}

// The function of the unstripped binary `full` that holds address addr
// (nm -S: start and size), empty when none.
std::string function_at(const std::string& full, uint64_t addr) {
  auto nm = e2e::run_command({"/usr/bin/nm", "-S", "--defined-only", full});
  EXPECT_EQ(nm.status, 0) << e2e::describe(nm);
  for (const auto& line : e2e::split_lines(nm.out)) {
    unsigned long long start = 0, size = 0;
    char type = 0;
    char name[256];
    if (std::sscanf(line.c_str(), "%llx %llx %c %255s", &start, &size, &type, name) == 4 &&
        (type == 't' || type == 'T') && addr >= start && addr < start + size)
      return name;
  }
  return {};
}

TEST(Symbols, MiniDebugInfoNamesFramesOfStrippedBinary) {
  // Fedora's MiniDebugInfo (gdb's manual, "MiniDebugInfo"): a stripped
  // binary carries, xz-compressed in .gnu_debugdata, a symbol table of the
  // functions .dynsym lacks. libdw reads it (Debian's is built with lzma).
  e2e::TempDir dir;
  const std::string full = e2e::workload("mallocgrowth");
  // Names nm prints (posix format), all of them or the recipe's functions
  // and data (types T, t, D).
  auto nm_names = [&](std::vector<std::string> argv, bool functions_only) {
    auto r = e2e::run_command(argv);
    EXPECT_EQ(r.status, 0) << e2e::describe(r);
    std::set<std::string> names;
    for (const auto& line : e2e::split_lines(r.out)) {
      char name[256], type = 0;
      if (std::sscanf(line.c_str(), "%255s %c", name, &type) == 2 &&
          (!functions_only || type == 'T' || type == 't' || type == 'D'))
        names.insert(name);
    }
    return names;
  };
  // The recipe: the function symbols that are not dynamic ones...
  const auto dynamic = nm_names({"/usr/bin/nm", "-D", "--format=posix", "--defined-only", full}, false);
  std::string keep;
  for (const auto& n : nm_names({"/usr/bin/nm", "--format=posix", "--defined-only", full}, true))
    if (!dynamic.count(n)) keep += n + "\n";
  e2e::write_file(dir.file("keep_symbols"), keep);
  // ...kept alone in a copy of the debug file, compressed into the section.
  auto oc = e2e::run_command({"/usr/bin/objcopy", "--only-keep-debug", full, dir.file("mini.debug")});
  ASSERT_EQ(oc.status, 0) << e2e::describe(oc);
  auto only =
      e2e::run_command({"/usr/bin/objcopy", "-S", "--remove-section", ".gdb_index", "--remove-section", ".comment",
                        "--keep-symbols=" + dir.file("keep_symbols"), dir.file("mini.debug"), dir.file("mini")});
  ASSERT_EQ(only.status, 0) << e2e::describe(only);
  auto xz = e2e::run_command({"/usr/bin/xz", "--keep", dir.file("mini")});
  ASSERT_EQ(xz.status, 0) << e2e::describe(xz) << " (scripts/setup.sh installs xz-utils)";
  const std::string bin = dir.file("mallocgrowth-mini");
  auto strip = e2e::run_command({"/usr/bin/strip", "--strip-all", "-o", bin, full});
  ASSERT_EQ(strip.status, 0) << e2e::describe(strip);
  auto add = e2e::run_command({"/usr/bin/objcopy", "--add-section", ".gnu_debugdata=" + dir.file("mini.xz"), bin});
  ASSERT_EQ(add.status, 0) << e2e::describe(add);
  // The premise: no symbol table and no DWARF but the compressed one.
  auto sections = e2e::run_command({"/usr/bin/readelf", "-S", "--wide", bin});
  ASSERT_EQ(sections.status, 0) << e2e::describe(sections);
  ASSERT_EQ(sections.out.find(".symtab"), std::string::npos);
  ASSERT_EQ(sections.out.find(".debug_info"), std::string::npos);
  ASSERT_NE(sections.out.find(".gnu_debugdata"), std::string::npos);
  ASSERT_EQ(dynamic.count("small_mallocs_grow_heap"), 0u) << "the workload exports its functions";

  const std::string rec = dir.file("r.vmat");
  auto r = e2e::run_command(e2e::vmatrace_argv({"record", "-o", rec, "--", bin, dir.file("steps")}));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  auto frames = source_frames(replay.out, bin);
  ASSERT_FALSE(frames.empty()) << replay.out.substr(0, 3000);
  const auto symbols = nm_symbols(full);
  bool grow = false;
  for (const auto& f : frames) {
    if (f.function.empty()) {
      ADD_FAILURE() << "a frame of " << bin << " without a name";
      continue;
    }
    // Ground truth: nm -S of the unstripped binary puts the call (the
    // return address minus one) inside that very function.
    auto s = symbols.find(f.function);
    ASSERT_NE(s, symbols.end()) << f.function << " is not a symbol of " << full;
    EXPECT_EQ(function_at(full, s->second + f.offset - 1), f.function) << f.function << "+" << f.offset;
    EXPECT_TRUE(f.file.empty()) << "a source line without DWARF: " << f.file;
    grow |= f.function == "small_mallocs_grow_heap";
  }
  EXPECT_TRUE(grow) << replay.out.substr(0, 3000);
}

// A JIT's jitdump, parsed by the test itself (perf's
// jitdump-specification.txt): JIT_CODE_LOAD records as start -> (size, name).
std::map<uint64_t, std::pair<uint64_t, std::string>> jitdump_loads(const std::string& bytes) {
  std::map<uint64_t, std::pair<uint64_t, std::string>> out;
  uint32_t header_size = 0;
  if (bytes.size() < 40) return out;
  std::memcpy(&header_size, bytes.data() + 8, 4);
  for (size_t pos = header_size; pos + 16 <= bytes.size();) {
    uint32_t id = 0, size = 0;
    std::memcpy(&id, bytes.data() + pos, 4);
    std::memcpy(&size, bytes.data() + pos + 4, 4);
    if (size < 16 || pos + size > bytes.size()) break;
    if (id == 0 && size >= 56) {
      uint64_t addr = 0, code_size = 0;
      std::memcpy(&addr, bytes.data() + pos + 16 + 16, 8);
      std::memcpy(&code_size, bytes.data() + pos + 16 + 24, 8);
      out[addr] = {code_size, std::string(bytes.c_str() + pos + 56)};
    }
    pos += size;
  }
  return out;
}

TEST(Symbols, JitFramesNamedFromJitdumpLiveAndInReplay) {
  // node --perf-prof writes jit-PID.dump in its working directory (no perf
  // map) and maps it executable, as perf expects of a jitdump.
  e2e::TempDir dir;
  const std::string js = dir.file("grow.js");
  e2e::write_file(js, kGrowJs);
  const std::string work = dir.file("work");
  ASSERT_EQ(::mkdir(work.c_str(), 0755), 0);
  auto node = [&](const std::string& cmd, std::vector<std::string> extra) {
    std::vector<std::string> args = {cmd};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const char* a : {"--", "/usr/bin/env", "-C"}) args.push_back(a);
    for (const auto& a : {work, std::string("/usr/bin/node"), std::string("--perf-prof"),
                          "--logfile=" + dir.file("v8.log"), std::string("--no-logfile-per-isolate"), js})
      args.push_back(a);
    return e2e::run_command(e2e::vmatrace_argv(args), std::chrono::seconds(120));
  };
  const std::string rec = dir.file("jit.vmat");
  auto r = node("record", {"-o", rec});
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  std::string dump_path;
  for (const auto& e : std::filesystem::directory_iterator(work))
    if (e.path().filename().string().starts_with("jit-")) dump_path = e.path();
  ASSERT_FALSE(dump_path.empty()) << "node --perf-prof wrote no jitdump in " << work;
  const std::string name = std::filesystem::path(dump_path).filename();  // jit-PID.dump
  const std::string perf_map = "/tmp/perf-" + name.substr(4, name.size() - 9) + ".map";
  ASSERT_NE(::access(perf_map.c_str(), F_OK), 0) << "a perf map too: " << perf_map;
  auto bytes = e2e::read_file(dump_path);
  ASSERT_TRUE(bytes.has_value());
  const auto truth = jitdump_loads(*bytes);
  ASSERT_FALSE(truth.empty()) << dump_path;
  // Offline: the jitdump is gone, the recording's copy names the frames.
  ASSERT_EQ(std::remove(dump_path.c_str()), 0);
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}), std::chrono::seconds(120));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  auto frames = growth_frames(replay.out);
  ASSERT_FALSE(frames.empty()) << replay.out.substr(0, 2000);
  EXPECT_GT(check_jit_frames(frames, truth, "replay"), 0u) << "no growth stack passes through growFromJit";

  // Live: trace finds the jitdump among node's mappings as frames come.
  auto live = node("trace", {"--json"});
  ASSERT_EQ(live.status, 0) << e2e::describe(live);
  for (const auto& e : std::filesystem::directory_iterator(work))
    if (e.path().filename().string().starts_with("jit-")) dump_path = e.path();
  bytes = e2e::read_file(dump_path);
  ASSERT_TRUE(bytes.has_value()) << dump_path;
  // Every JIT frame must carry its jitdump name. That some growth stack
  // reaches JIT code live is not asserted: in 2 of 6 live runs under load
  // no stack's unwind got past node's own frames (no frame in no module at
  // all), while the recorded ones always did.
  const size_t live_named = check_jit_frames(growth_frames(live.out), jitdump_loads(*bytes), "live");
  std::printf("jitdump: %zu live growth frames in growFromJit\n", live_named);
}

// A perf map's entries, parsed by the test: start -> (size, name).
std::map<uint64_t, std::pair<uint64_t, std::string>> perf_map_entries(const std::string& text) {
  std::map<uint64_t, std::pair<uint64_t, std::string>> out;
  for (const auto& line : e2e::split_lines(text)) {
    unsigned long long start = 0, size = 0;
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%llx %llx %n", &start, &size, &name_at) == 2 && name_at > 0)
      out[start] = {size, line.substr(static_cast<size_t>(name_at))};
  }
  return out;
}

TEST(Symbols, PerfMapOfProcessInAnotherPidAndMountNamespace) {
  // node in its own PID and mount namespace, with a private /tmp (a tmpfs
  // of its namespace): it writes /tmp/perf-NSPID.map there, under its own
  // pid, where the host sees neither the file nor that name. The map is
  // copied out (through the working directory, under the host's /tmp)
  // after node exits: the ground truth.
  e2e::TempDir dir;
  const std::string script = std::string("cd ") + dir.path() +
                             " && mount -t tmpfs tmpfs /tmp && /usr/bin/node --perf-basic-prof --logfile=/tmp/v8.log"
                             " --no-logfile-per-isolate -e \"$GROW_JS\"; cp /tmp/perf-*.map truth.map";
  const std::string rec = dir.file("ns.vmat");
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "GROW_JS=" + std::string(kGrowJs)};
    for (auto& a : e2e::vmatrace_argv(std::move(args))) argv.push_back(std::move(a));
    for (const char* a : {"--", "/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c"})
      argv.push_back(a);
    argv.push_back(script);
    return e2e::run_command(argv, std::chrono::seconds(120));
  };
  auto r = run({"record", "-o", rec});
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  auto text = e2e::read_file(dir.file("truth.map"));
  ASSERT_TRUE(text.has_value()) << "node wrote no perf map in its namespace";
  auto truth = perf_map_entries(*text);
  ASSERT_FALSE(truth.empty());
  // node's host pid and its pid in the namespace, from the recording.
  auto json = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}), std::chrono::seconds(120));
  ASSERT_EQ(json.status, 0) << e2e::describe(json);
  std::smatch m;
  const std::regex node_ids(R"re("pid":(\d+),"tid":\d+,"nspid":(\d+),"nstid":\d+,"comm":"node")re");
  ASSERT_TRUE(std::regex_search(json.out, m, node_ids)) << json.out.substr(0, 3000);
  EXPECT_NE(m[1].str(), m[2].str()) << "node has the same pid in its namespace";
  EXPECT_NE(::access(("/tmp/perf-" + m[1].str() + ".map").c_str(), F_OK), 0) << "a perf map on the host";
  EXPECT_GT(check_jit_frames(growth_frames(json.out), truth, "replay"), 0u) << json.out.substr(0, 3000);

  // Live too: trace reads it through node's root while node runs.
  auto live = run({"trace", "--json"});
  ASSERT_EQ(live.status, 0) << e2e::describe(live);
  text = e2e::read_file(dir.file("truth.map"));
  ASSERT_TRUE(text.has_value());
  truth = perf_map_entries(*text);
  EXPECT_GT(check_jit_frames(growth_frames(live.out), truth, "live"), 0u) << live.out.substr(0, 3000);
}

}  // namespace

// A JVM names its compiled Java methods in a perf map at its exit
// (HotSpot's -XX:+DumpPerfMapAtExit, Debian's OpenJDK 17, no agent): the
// map is read at the process's exit record and kept in the recording, so a
// replay after the file is gone names the growth frames in JIT code: a
// Java method that allocates direct buffers (Unsafe.allocateMemory ->
// malloc -> mmap past 128 KiB). -XX:+PreserveFramePointer lets the
// unwinder walk through compiled Java frames. Ground truth: the perf map
// the JVM wrote, each [jit] frame's pc inside an entry of that name.
constexpr const char* kGrowJava =
    "import java.nio.ByteBuffer;\n"
    "import java.util.ArrayList;\n"
    "public class Grow {\n"
    "  static ArrayList<ByteBuffer> keep = new ArrayList<>();\n"
    "  static long growDirect(int i) {\n"
    "    ByteBuffer b = ByteBuffer.allocateDirect(256 * 1024);\n"
    "    b.put(0, (byte) i);\n"
    "    if (i % 2 == 0) keep.add(b);\n"
    "    return b.capacity();\n"
    "  }\n"
    "  public static void main(String[] a) {\n"
    "    long sum = 0;\n"
    "    for (int i = 0; i < 6000; i++) { sum += growDirect(i); if (keep.size() > 100) keep.clear(); }\n"
    "    System.out.println(sum);\n"
    "  }\n"
    "}\n";

TEST(Symbols, JvmCompiledMethodsNamedFromItsPerfMapAtExit) {
  e2e::TempDir dir;
  e2e::write_file(dir.file("Grow.java"), kGrowJava);
  auto javac = e2e::run_command({"/usr/bin/javac", "-d", dir.path(), dir.file("Grow.java")}, std::chrono::seconds(120));
  ASSERT_EQ(javac.status, 0) << e2e::describe(javac) << " (scripts/setup.sh installs openjdk-17-jdk-headless)";
  const std::string rec = dir.file("jvm.vmat");
  auto r = e2e::run_command(
      e2e::vmatrace_argv({"record", "-o", rec, "--faults", "off", "--", "/usr/bin/java",
                          "-XX:+UnlockDiagnosticVMOptions", "-XX:+DumpPerfMapAtExit", "-XX:+PreserveFramePointer",
                          "-XX:TieredStopAtLevel=1", "-cp", dir.path(), "Grow"}),
      std::chrono::seconds(240));
  ASSERT_EQ(r.status, 0) << e2e::describe(r);
  EXPECT_NE(r.out.find(std::to_string(6000LL * 256 * 1024)), std::string::npos) << "the program did not finish";
  auto dump = e2e::run_command(e2e::vmatrace_argv({"replay", "--records", rec}));
  ASSERT_EQ(dump.status, 0) << e2e::describe(dump);
  std::smatch m;
  std::set<std::string> pids;
  for (const auto& line : e2e::split_lines(dump.out))
    if (std::regex_search(line, m, std::regex(R"re(^\d+ (\d+)/\d+ jit_map)re"))) pids.insert(m[1]);
  ASSERT_EQ(pids.size(), 1u) << "one jit_map record set (java's) expected:\n" << dump.out.substr(0, 3000);
  const std::string perf_map = "/tmp/perf-" + *pids.begin() + ".map";
  auto text = e2e::read_file(perf_map);
  ASSERT_TRUE(text.has_value()) << perf_map << " (the JVM wrote no perf map at its exit)";
  const auto truth = perf_map_entries(*text);
  ASSERT_FALSE(truth.empty()) << perf_map;
  ASSERT_EQ(std::remove(perf_map.c_str()), 0) << perf_map;
  auto replay = e2e::run_command(e2e::vmatrace_argv({"replay", "--json", rec}), std::chrono::seconds(240));
  ASSERT_EQ(replay.status, 0) << e2e::describe(replay);
  const auto frames = growth_frames(replay.out);
  ASSERT_FALSE(frames.empty()) << replay.out.substr(0, 2000);
  const size_t grow = check_jit_frames(frames, truth, "replay", "Grow.growDirect");
  // Most of the 6000 growths run compiled code: C1 only (TieredStopAtLevel=1),
  // so the code compiled after a few hundred calls is the code alive at the
  // exit, which is all the map holds (code replaced before the exit, e.g.
  // tier 3 by C2's, is not in it: docs/malloc.md).
  EXPECT_GT(grow, 3000u) << "growth stacks through the compiled Java method Grow.growDirect";
  std::printf("jvm: %zu growth frames named Grow.growDirect from the JVM's perf map\n", grow);
}
