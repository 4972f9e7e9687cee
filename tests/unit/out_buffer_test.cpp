// src/output/out_buffer.h: the encoders' number writers against printf, at
// the edges (0, one digit, a nibble boundary, every width up to 16 hex
// digits, the largest value) and over pseudo-random values; util/text.h's
// human sizes written in place.
#include "output/out_buffer.h"

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "util/text.h"

namespace vmatrace {
namespace {

std::string printf_of(const char* fmt, uint64_t v) {
  char b[64];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}

std::vector<uint64_t> values() {
  std::vector<uint64_t> v{0, 1, 9, 10, 15, 16, 255, 256, 4095, 4096, UINT32_MAX, uint64_t{UINT32_MAX} + 1, UINT64_MAX};
  for (int bits = 1; bits < 64; bits++) {
    v.push_back((uint64_t{1} << bits) - 1);
    v.push_back(uint64_t{1} << bits);
  }
  std::mt19937_64 rng(16);
  for (int i = 0; i < 2000; i++) v.push_back(rng() >> (rng() % 64));
  return v;
}

TEST(OutBuffer, NumbersAsPrintfWritesThem) {
  for (uint64_t x : values()) {
    OutBuffer b;
    b.hex(x) << ' ';
    b.xdigits(x) << ' ';
    b.xdigits0(x & 0xff, 2) << ' ';
    b.dec(x) << ' ';
    b.sdec(static_cast<int64_t>(x)) << ' ';
    b.dec0(x % 1000000, 6) << ' ';
    b.decw(x % 100000000, 5);
    const std::string want = printf_of("0x%" PRIx64, x) + " " + printf_of("%" PRIx64, x) + " " +
                             printf_of("%02" PRIx64, x & 0xff) + " " + printf_of("%" PRIu64, x) + " " +
                             printf_of("%" PRId64, x) + " " + printf_of("%06" PRIu64, x % 1000000) + " " +
                             printf_of("%5" PRIu64, x % 100000000);
    ASSERT_EQ(b.view(), want) << x;
  }
}

TEST(OutBuffer, GrowsKeepingWhatItHolds) {
  OutBuffer b;
  std::string want;
  for (int i = 0; i < 20000; i++) {
    b.hex(static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull) << ',';
    want += printf_of("0x%" PRIx64, static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull) + ",";
  }
  EXPECT_EQ(b.view(), want);
  b.clear();
  EXPECT_TRUE(b.empty());
  b << std::string_view{} << "x";
  EXPECT_EQ(b.view(), "x");
}

TEST(HumanSize, WrittenInPlaceAsTheString) {
  for (uint64_t x : values()) {
    char buf[kHumanSizeMax];
    EXPECT_EQ(std::string(buf, put_human_size(buf, x)), human_size(x)) << x;
  }
  EXPECT_EQ(human_size(4096), "4.0 KiB");
  EXPECT_EQ(human_size(12), "12 B");
  EXPECT_EQ(human_size(UINT64_MAX), "16 EiB");
}

}  // namespace
}  // namespace vmatrace
