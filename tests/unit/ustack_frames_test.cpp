// VMAT_REC_STACK_FRAMES: the user stack a recording keeps by default (its
// unwound return addresses, not the stack memory): encoding, hostile
// input, and the malloc stage symbolizing it as it would the raw stack.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "core/processor.h"
#include "core/records.h"
#include "core/ustack_frames.h"
#include "support/records.h"
#include "sym/malloc_tracker.h"
#include "trace/procfs.h"

namespace vmatrace {
namespace {

using test::records::decode;
using test::records::keep;

std::vector<std::byte> frames_rec(uint32_t pid, uint64_t ts, uint64_t enter_ts, std::vector<uint64_t> pcs) {
  return encode_ustack_frames(make_header(VMAT_REC_STACK_FRAMES, ts, pid, pid, "t"), enter_ts, VMAT_SYS_MMAP, pcs);
}

TEST(UstackFrames, RoundTrip) {
  const std::vector<uint64_t> pcs = {0x401000 | VMAT_USTACK_PC_EXACT, 0x401234, 0x7f0000001000};
  auto b = frames_rec(7, 100, 99, pcs);
  EXPECT_EQ(b.size(), sizeof(vmat_ustack_frames) + 3 * 8);
  auto d = decode(b);
  EXPECT_EQ(d.type, VMAT_REC_STACK_FRAMES);
  EXPECT_EQ(d.frames.enter_ts, 99u);
  EXPECT_EQ(d.frames.sys, static_cast<uint32_t>(VMAT_SYS_MMAP));
  EXPECT_EQ(d.frames.version, VMAT_USTACK_FRAMES_VERSION);
  ASSERT_EQ(d.frames.nframes, 3u);
  for (size_t i = 0; i < pcs.size(); i++) EXPECT_EQ(ustack_frame_pc(d, i), pcs[i]);
  EXPECT_TRUE(is_user_stack_record(d.type));
  EXPECT_TRUE(is_user_stack_record(VMAT_EV_USER_STACK));
  EXPECT_FALSE(is_user_stack_record(VMAT_EV_SYSCALL));
}

TEST(UstackFrames, AtMostTheMaximumIsEncoded) {
  std::vector<uint64_t> many(VMAT_USTACK_FRAMES_MAX + 10, 0x401000);
  auto d = decode(frames_rec(7, 1, 1, many));
  EXPECT_EQ(d.frames.nframes, VMAT_USTACK_FRAMES_MAX);
}

TEST(UstackFrames, ACountThatDisagreesWithTheLengthIsMalformed) {
  auto b = frames_rec(7, 1, 1, {1, 2, 3});
  std::string err;
  // One pc short of its count.
  auto cut = b;
  cut.resize(cut.size() - 8);
  uint32_t size = static_cast<uint32_t>(cut.size());
  std::memcpy(cut.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  EXPECT_FALSE(decode_record(keep(cut), &err));
  EXPECT_NE(err.find("frame count"), std::string::npos) << err;
  // A count beyond the maximum, with the bytes to match.
  std::vector<uint64_t> over(VMAT_USTACK_FRAMES_MAX + 1, 5);
  vmat_ustack_frames f{};
  f.hdr = make_header(VMAT_REC_STACK_FRAMES, 1, 7, 7, "t");
  f.version = VMAT_USTACK_FRAMES_VERSION;
  f.nframes = static_cast<uint16_t>(over.size());
  std::string tail(reinterpret_cast<const char*>(over.data()), over.size() * 8);
  err.clear();
  EXPECT_FALSE(decode_record(keep(test::records::bytes_of(f, tail)), &err));
  // Shorter than its struct.
  auto tiny = test::records::bytes_of(make_header(VMAT_REC_STACK_FRAMES, 1, 7, 7, "t"));
  err.clear();
  EXPECT_FALSE(decode_record(keep(tiny), &err));
}

TEST(UstackFrames, AVersionThisReaderDoesNotKnowHasNoFrames) {
  vmat_ustack_frames f{};
  f.hdr = make_header(VMAT_REC_STACK_FRAMES, 1, 7, 7, "t");
  f.version = VMAT_USTACK_FRAMES_VERSION + 1;
  f.nframes = 2;
  auto d = decode(test::records::bytes_of(f, "a different tail layout"));
  EXPECT_EQ(d.frames.nframes, 0u);
  EXPECT_TRUE(d.stack.empty());
}

__attribute__((noinline)) int frames_test_inner(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}
__attribute__((noinline)) int frames_test_outer(int x) {
  int r = frames_test_inner(x) + 7;
  asm volatile("" ::: "memory");
  return r * 5;
}

// The malloc stage joins a frames record to its growth syscall and
// symbolizes its pcs against the layout: here, this very process.
TEST(UstackFrames, MallocTrackerSymbolizesRecordedFrames) {
  const uint32_t pid = static_cast<uint32_t>(::getpid());
  Processor p;
  LayoutRecord l = read_proc_layout_record(::getpid());
  p.apply(decode(encode_layout(make_header(VMAT_REC_LAYOUT, 10, pid, pid, "t"), l)), nullptr);
  // A real anonymous mapping the layout read above does not have yet.
  const size_t len = 1 << 20;
  void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  const uint64_t addr = reinterpret_cast<uint64_t>(m);
  auto sys = test::records::mmap_event(pid, 20, addr, len, test::records::kinfo(addr, addr + len));
  sys.enter_ts = 19;
  MallocTracker t(/*live=*/true);
  auto s = decode(test::records::bytes_of(sys));
  t.before_apply(s, p);
  p.apply(s, nullptr);
  // The innermost frame exactly at frames_test_inner; its caller's return
  // address a few bytes into frames_test_outer.
  const uint64_t inner = reinterpret_cast<uint64_t>(&frames_test_inner) + 1;
  const uint64_t outer = reinterpret_cast<uint64_t>(&frames_test_outer) + 6;
  auto f = decode(frames_rec(pid, 21, 19, {inner | VMAT_USTACK_PC_EXACT, outer}));
  t.before_apply(f, p);
  p.apply(f, nullptr);
  auto g = t.after_apply(f, p);
  ::munmap(m, len);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->via, "mmap");
  EXPECT_EQ(g->bytes, len);
  ASSERT_EQ(g->stack.size(), 2u);
  EXPECT_EQ(g->stack[0].pc, inner);
  EXPECT_NE(g->stack[0].function.find("frames_test_inner"), std::string::npos) << g->stack[0].function;
  EXPECT_EQ(g->stack[0].offset, 1u);
  EXPECT_EQ(g->stack[1].pc, outer);
  EXPECT_NE(g->stack[1].function.find("frames_test_outer"), std::string::npos) << g->stack[1].function;
  EXPECT_NE(g->stack[1].module.find("vmatrace_unit_tests"), std::string::npos) << g->stack[1].module;
  // A frames record for another syscall (enter_ts) is no growth.
  auto other = decode(frames_rec(pid, 22, 18, {inner}));
  t.before_apply(other, p);
  EXPECT_FALSE(t.after_apply(other, p));
}

}  // namespace
}  // namespace vmatrace
