// The perf map parser, the jitdump reader, the JIT table's replacement rule
// and the jit_map record's round trip (src/sym/jit_symbols.h,
// src/core/records.h).

#include "sym/jit_symbols.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

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

// A jitdump as perf's jitdump-specification.txt lays it out (x86-64).
class JitDumpBuilder {
 public:
  JitDumpBuilder() {
    const uint32_t header[] = {0x4A695444, 1, 40, 62, 0, 1234};
    put(header, sizeof(header));
    const uint64_t tail[] = {0, 0};  // timestamp, flags
    put(tail, sizeof(tail));
  }
  void load(uint64_t addr, uint64_t size, const std::string& name) {
    prefix(0, 16 + 40 + name.size() + 1 + size);
    const uint32_t ids[] = {1234, 1234};
    put(ids, sizeof(ids));
    const uint64_t f[] = {addr, addr, size, index_++};
    put(f, sizeof(f));
    put(name.c_str(), name.size() + 1);
    bytes_.append(size, '\xcc');  // the code
  }
  void move(uint64_t from, uint64_t to, uint64_t size) {
    prefix(1, 16 + 48);
    const uint32_t ids[] = {1234, 1234};
    put(ids, sizeof(ids));
    const uint64_t f[] = {to, from, to, size, index_++};
    put(f, sizeof(f));
  }
  void other(uint32_t id, size_t body) {  // debug info, unwinding info, close
    prefix(id, 16 + body);
    bytes_.append(body, '\0');
  }
  std::string& bytes() { return bytes_; }

 private:
  void prefix(uint32_t id, uint64_t total) {
    const uint32_t p[] = {id, static_cast<uint32_t>(total)};
    put(p, sizeof(p));
    const uint64_t ts = 0;
    put(&ts, sizeof(ts));
  }
  void put(const void* p, size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  std::string bytes_;
  uint64_t index_ = 0;
};

// A file whose content a test sets (the reader reads an fd).
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/jitdump-test-XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
  }
  ~TempFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  void set(const std::string& bytes) {
    EXPECT_EQ(::ftruncate(fd_, 0), 0);
    EXPECT_EQ(::pwrite(fd_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

TEST(JitSymbols, JitDumpLoadsAndMovesAsTheyAreAppended) {
  JitDumpBuilder b;
  b.load(0x7000, 0x40, "JS:*growFromJit /tmp/g.js:2:21");
  b.other(2, 24);  // JIT_CODE_DEBUG_INFO
  b.load(0x8000, 0x20, "JS:~other /tmp/g.js:5:1");
  TempFile f;
  JitDumpReader r;
  JitTable t;
  // The header alone, then the records, then a load cut short.
  f.set(b.bytes().substr(0, 40));
  EXPECT_TRUE(r.read(f.fd(), t));
  EXPECT_EQ(t.size(), 0u);
  const size_t whole = b.bytes().size();
  b.move(0x8000, 0x9000, 0x20);
  b.load(0xa000, 0x10, "JS:*late");
  f.set(b.bytes().substr(0, b.bytes().size() - 5));
  EXPECT_TRUE(r.read(f.fd(), t));
  ASSERT_NE(t.find(0x7010), nullptr);
  EXPECT_EQ(t.find(0x7010)->name, "JS:*growFromJit /tmp/g.js:2:21");
  EXPECT_EQ(t.find(0x7040), nullptr);
  ASSERT_NE(t.find(0x901f), nullptr);  // moved: at the new place, with its name
  EXPECT_EQ(t.find(0x901f)->name, "JS:~other /tmp/g.js:5:1");
  EXPECT_EQ(t.find(0xa000), nullptr);  // still being written
  f.set(b.bytes());
  EXPECT_TRUE(r.read(f.fd(), t));
  ASSERT_NE(t.find(0xa000), nullptr);
  EXPECT_EQ(t.find(0xa000)->name, "JS:*late");
  EXPECT_GT(b.bytes().size(), whole);
}

TEST(JitSymbols, JitDumpOfAnotherFormatOrMalformedIsRefused) {
  TempFile f;
  JitTable t;
  JitDumpBuilder swapped;
  swapped.bytes()[0] = 'J';  // the magic as the other byte order writes it
  swapped.bytes()[1] = 'i';
  swapped.bytes()[2] = 'T';
  swapped.bytes()[3] = 'D';
  f.set(swapped.bytes());
  JitDumpReader a;
  EXPECT_FALSE(a.read(f.fd(), t));
  // A load whose code would run past the record.
  JitDumpBuilder b;
  b.load(0x7000, 0x40, "f");
  std::string bytes = b.bytes();
  const uint64_t huge = 1ull << 40;
  std::memcpy(bytes.data() + 40 + 16 + 24, &huge, sizeof(huge));  // code_size
  f.set(bytes);
  JitDumpReader c;
  EXPECT_FALSE(c.read(f.fd(), t));
  EXPECT_FALSE(c.read(f.fd(), t));  // and nothing more is read from it
  EXPECT_EQ(t.size(), 0u);
}

TEST(JitSymbols, PerfMapReadAsItGrowsAndAfreshWhenMadeAnew) {
  // This test process's own perf map (its pid, in its root).
  const std::string path = "/tmp/perf-" + std::to_string(::getpid()) + ".map";
  auto write = [&](const std::string& text, bool append) {
    FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
    ASSERT_NE(f, nullptr) << path;
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  JitSource source(static_cast<uint32_t>(::getpid()));
  JitTable t;
  ::unlink(path.c_str());
  EXPECT_FALSE(source.refresh(t, /*find_jitdump=*/false));  // none yet
  write("1000 10 first\n2000 10 half", false);
  EXPECT_TRUE(source.refresh(t, false));
  ASSERT_NE(t.find(0x1000), nullptr);
  EXPECT_EQ(t.find(0x2000), nullptr);  // a line still being written
  write(" written\n", true);
  EXPECT_TRUE(source.refresh(t, false));
  ASSERT_NE(t.find(0x2000), nullptr);
  EXPECT_EQ(t.find(0x2000)->name, "half written");
  // A runtime that makes the file anew (another inode): read from its start.
  ::unlink(path.c_str());
  write("3000 10 anew\n", false);
  EXPECT_TRUE(source.refresh(t, false));
  ASSERT_NE(t.find(0x3000), nullptr);
  EXPECT_EQ(t.find(0x3000)->name, "anew");
  // Removed: the file held open is still read.
  ::unlink(path.c_str());
  EXPECT_TRUE(source.refresh(t, false));
  EXPECT_FALSE(source.has_jitdump());
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
