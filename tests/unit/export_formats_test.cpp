// The export encoders without a recording: pprof samples, strings and
// stacks (decoded back with the same generated messages), folded stacks.
#include <google/protobuf/io/gzip_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <string>

#include "pprof.pb.h"
#include "report/folded_growth.h"
#include "report/pprof_profile.h"

namespace vmatrace {
namespace {

StackFrame frame(const std::string& fn, uint64_t pc, const std::string& file = "", int line = 0) {
  StackFrame f;
  f.pc = pc;
  f.symbol = fn;
  f.function = fn;
  f.file = file;
  f.line = line;
  f.module = "/usr/bin/app";
  return f;
}

// brk growth from malloc called by grow() called by main.
MallocGrowth growth(uint64_t bytes, const char* allocator = "malloc") {
  MallocGrowth g;
  g.pid = 7;
  g.via = "brk";
  g.bytes = bytes;
  g.stack = {frame("brk", 0x7f0000001000), frame(allocator, 0x7f0000002000), frame("grow", 0x401000, "a.c", 9),
             frame("main", 0x402000, "a.c", 20)};
  g.attribution.allocator = allocator;
  g.attribution.allocator_frame = 1;
  g.attribution.call_site = 2;
  return g;
}

pprof::Profile decode(const std::string& gz) {
  google::protobuf::io::ArrayInputStream raw(gz.data(), static_cast<int>(gz.size()));
  google::protobuf::io::GzipInputStream in(&raw, google::protobuf::io::GzipInputStream::GZIP);
  pprof::Profile p;
  EXPECT_TRUE(p.ParseFromZeroCopyStream(&in));
  return p;
}

TEST(Pprof, OneSamplePerStackAndAllocatorFromTheCallSiteOut) {
  PprofBuilder b(/*with_faults=*/false);
  b.add_growth(growth(4096), nullptr);
  b.add_growth(growth(8192), nullptr);
  b.add_growth(growth(100, "calloc"), nullptr);
  EXPECT_EQ(b.growth_samples(), 2u);
  pprof::Profile p = decode(b.gzipped());
  ASSERT_GE(p.string_table_size(), 1);
  EXPECT_EQ(p.string_table(0), "");
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(p.string_table(p.sample_type(0).type()), "growth/bytes");
  EXPECT_EQ(p.string_table(p.sample_type(0).unit()), "bytes");
  EXPECT_EQ(p.string_table(p.sample_type(1).type()), "growth/count");
  EXPECT_EQ(p.string_table(p.default_sample_type()), "growth/bytes");
  ASSERT_EQ(p.sample_size(), 2);
  EXPECT_EQ(p.sample(0).value(0), 4096 + 8192);
  EXPECT_EQ(p.sample(0).value(1), 2);
  EXPECT_EQ(p.sample(1).value(0), 100);
  ASSERT_EQ(p.sample(1).label_size(), 1);
  EXPECT_EQ(p.string_table(p.sample(1).label(0).key()), "allocator");
  EXPECT_EQ(p.string_table(p.sample(1).label(0).str()), "calloc");
  // The call site (grow) is the leaf; brk and malloc are not frames.
  ASSERT_EQ(p.sample(0).location_id_size(), 2);
  auto name_of = [&](uint64_t location) {
    for (const auto& l : p.location())
      if (l.id() == location)
        for (const auto& f : p.function())
          if (f.id() == l.line(0).function_id()) return p.string_table(f.name());
    return std::string("?");
  };
  EXPECT_EQ(name_of(p.sample(0).location_id(0)), "grow");
  EXPECT_EQ(name_of(p.sample(0).location_id(1)), "main");
  EXPECT_EQ(p.location_size(), 2);  // shared by both samples
}

TEST(Pprof, FaultsByIpWithTheirKindAsLabel) {
  PprofBuilder b(/*with_faults=*/true);
  b.add_fault(0x401000, /*major=*/false, /*minor=*/true, nullptr);
  b.add_fault(0x401000, false, true, nullptr);
  b.add_fault(0x401000, true, false, nullptr);
  EXPECT_EQ(b.fault_samples(), 2u);
  pprof::Profile p = decode(b.gzipped());
  ASSERT_EQ(p.sample_type_size(), 3);
  EXPECT_EQ(p.string_table(p.sample_type(2).type()), "faults/count");
  ASSERT_EQ(p.sample_size(), 2);
  EXPECT_EQ(p.sample(0).value(2), 2);
  EXPECT_EQ(p.sample(0).value(0), 0);
  EXPECT_EQ(p.string_table(p.sample(0).label(0).str()), "minor");
  EXPECT_EQ(p.string_table(p.sample(1).label(0).str()), "major");
}

TEST(Folded, StacksFromTheEntryToTheCallSiteThenTheAllocator) {
  FoldedGrowth f;
  f.add(growth(4096), "app");
  f.add(growth(4096), "app");
  MallocGrowth odd = growth(10);
  odd.stack[3].function = "ns::f;g";  // ';' is the separator
  f.add(odd, "app");
  EXPECT_EQ(f.text(), "app;main;grow;[malloc] 8192\napp;ns::f,g;grow;[malloc] 10\n");
  EXPECT_EQ(f.bytes(), 8202u);
}

}  // namespace
}  // namespace vmatrace
