// Symbols beyond the symbol table: Debian's libc.so.6 is stripped of its
// DWARF; with libc6-dbg installed its debug info lives apart, in
// /usr/lib/debug/.build-id/xx/yyyy.debug. libdw's standard find_debuginfo
// (the symbolizer's Dwfl callbacks, src/sym/unwinder.cpp) finds it by build
// id, so malloc growth frames inside libc get names and source lines.

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
