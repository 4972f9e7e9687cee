// The perf map parser, the JIT table's replacement rule and the jit_map
// record's round trip (src/sym/jit_symbols.h, src/core/records.h).

#include "sym/jit_symbols.h"

#include <gtest/gtest.h>

#include "core/records.h"
#include "sym/unwinder.h"
#include "vmatrace/abi/events.h"

namespace vmatrace {
namespace {

TEST(JitSymbols, ParsesPerfMapLinesAndSkipsBadOnes) {
  auto code = parse_perf_map(
      "7f7cc1fc5b80 3bc JS:*growFromJit /tmp/grow.js:4:21\n"
      "0x1000 10 with 0x prefix\n"
      "nothex 10 bad\n"
      "2000 0 empty\n"
      "3000 10\n"
      "4000 20 last line without newline");
  ASSERT_EQ(code.size(), 3u);
  EXPECT_EQ(code[0], (JitCode{0x7f7cc1fc5b80, 0x3bc, "JS:*growFromJit /tmp/grow.js:4:21"}));
  EXPECT_EQ(code[1], (JitCode{0x1000, 0x10, "with 0x prefix"}));
  EXPECT_EQ(code[2], (JitCode{0x4000, 0x20, "last line without newline"}));
}

TEST(JitSymbols, LaterCodeReplacesWhatItOverlaps) {
  JitTable t;
  t.add({0x1000, 0x100, "a"});
  t.add({0x1100, 0x100, "b"});
  t.add({0x2000, 0x100, "c"});
  t.add({0x10f0, 0x20, "new"});  // over the end of a and the start of b
  EXPECT_EQ(t.find(0x1000), nullptr);
  EXPECT_EQ(t.find(0x1100)->name, "new");
  EXPECT_EQ(t.find(0x1150), nullptr);
  EXPECT_EQ(t.find(0x20ff)->name, "c");
  EXPECT_EQ(t.find(0x2100), nullptr);
  EXPECT_EQ(t.size(), 2u);
}

TEST(JitSymbols, RecordedTableIsTheOneWrittenAfterTheStack) {
  JitSymbols s(/*live=*/false);
  const JitCode first[] = {{0x1000, 0x100, "first"}};
  const JitCode second[] = {{0x1000, 0x100, "second"}};
  s.add_record(7, 100, first);   // process 7 exits at 100
  s.add_record(7, 200, second);  // a later process 7, ended at 200
  EXPECT_EQ(s.find(7, 50, 0x1010)->name, "first");
  EXPECT_EQ(s.find(7, 150, 0x1010)->name, "second");
  EXPECT_EQ(s.find(7, 250, 0x1010), nullptr);
  EXPECT_EQ(s.find(8, 50, 0x1010), nullptr);
}

TEST(JitSymbols, SymbolizeNamesJitFramesAndNeverLeavesABlank) {
  // A recorded stack's pcs (VMAT_REC_STACK_FRAMES) of process 7 at ts 50:
  // one in JIT code, one in a binary that cannot be opened here, one in
  // neither.
  JitSymbols jit(/*live=*/false);
  const JitCode code[] = {{0x9000, 0x100, "JS:*grow app.js:2"}};
  jit.add_record(7, 100, code);
  std::vector<ModuleMapping> mods = {{"/nonexistent/app", 0x10000, 0x12000, 0x1000}};
  Unwinder u(7, mods, "", nullptr, &jit);
  const uint64_t pcs[] = {0x9010 | VMAT_USTACK_PC_EXACT, 0x10800, 0x50000};
  auto frames = u.symbolize(pcs, 50);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].module, kJitModule);
  EXPECT_EQ(frames[0].function, "JS:*grow app.js:2");
  EXPECT_EQ(frames[0].offset, 0x10u);
  EXPECT_EQ(frames[1].module, "/nonexistent/app");  // module + offset from its load base
  EXPECT_TRUE(frames[1].function.empty());
  EXPECT_EQ(frames[1].offset, 0x10800u - (0x10000u - 0x1000u));
  EXPECT_TRUE(frames[2].module.empty());
  EXPECT_EQ(frames[2].pc, 0x50000u);
  // After the table was written (another process with that pid): not named.
  EXPECT_TRUE(u.symbolize(pcs, 150)[0].module.empty());
}

TEST(JitSymbols, RecordRoundTrip) {
  const std::vector<JitCode> code = {{0x1000, 0x10, "JS:~f a.js:1:1"}, {0x2000, 0x20, ""}};
  auto bytes = encode_jit_map(make_header(VMAT_REC_JIT_MAP, 5, 42, 42, "node"), code);
  std::string err;
  auto d = decode_record(bytes, &err);
  ASSERT_TRUE(d) << err;
  ASSERT_TRUE(d->jit_map);
  EXPECT_EQ(d->jit_map->code, code);
  // Truncated: refused, not read past its end.
  bytes.resize(bytes.size() - 3);
  EXPECT_FALSE(decode_record(bytes, &err));
  // A count that the record cannot hold.
  auto lie = encode_jit_map(make_header(VMAT_REC_JIT_MAP, 5, 42, 42, "node"), code);
  lie[offsetof(vmat_jit_map, count)] = std::byte{0xff};
  EXPECT_FALSE(decode_record(lie, &err));
  // A version this reader does not know: skipped, not an error.
  auto newer = encode_jit_map(make_header(VMAT_REC_JIT_MAP, 5, 42, 42, "node"), code);
  newer[offsetof(vmat_jit_map, version)] = std::byte{2};
  auto n = decode_record(newer, &err);
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->jit_map);
}

}  // namespace
}  // namespace vmatrace
