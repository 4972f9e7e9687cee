// Overload: a ring buffer far too small for a mapping storm. Losses must be
// counted in the kernel, reported per process in the stream and in the
// summary, and followed by a resync of the layout from /proc; never silent.
#include <gtest/gtest.h>

#include <string>

#include "e2e_util.h"

using namespace e2e;

TEST(Loss, TinyRingBufferReportsLossesAndResyncs) {
  // One page of ring buffer: a few dozen records fit between two 1 ms
  // drains, a storm makes thousands per millisecond. Long enough that the
  // periodic loss check (every 100 ms) finds the storm alive: 5000 ended
  // before it in the ASan build (see JsonLossEventsCarryCounts).
  auto r = run_command({vmatrace_bin(), "trace", "--ringbuf-size", "4096", "--", "sh", "-c",
                        "exec \"$0\" \"$@\" >/dev/null", workload("storm"), "50000"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("LOST "), std::string::npos) << "no loss line in the stream";
  EXPECT_NE(r.out.find("layout resynchronised from /proc"), std::string::npos);
  EXPECT_NE(r.out.find("layout: "), std::string::npos) << "no resync layout record";
  // The summary names a non-zero total.
  auto pos = r.err.find("; lost ");
  ASSERT_NE(pos, std::string::npos) << r.err;
  EXPECT_NE(r.err.substr(pos, 9), "; lost 0") << r.err;
}

TEST(Loss, JsonLossEventsCarryCounts) {
  // Long enough that a periodic loss check (every 100 ms) finds the storm
  // alive, so its losses come with a resync; a storm that ends first has
  // them only on its exit event (and in the summary). 5000 was over before
  // the first check in the ASan build.
  auto r = run_command({vmatrace_bin(), "trace", "--json", "--ringbuf-size", "4096", "--", "sh", "-c",
                        "exec \"$0\" \"$@\" >/dev/null", workload("storm"), "50000"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"event\":\"lost\""), std::string::npos);
  EXPECT_NE(r.out.find("\"resync\":true"), std::string::npos);
  EXPECT_NE(r.out.find("\"reason\":\"resync\""), std::string::npos);
}

TEST(Loss, DefaultRingBufferLosesNothingOnTheStorm) {
  auto r = run_command(
      {vmatrace_bin(), "trace", "--", "sh", "-c", "exec \"$0\" \"$@\" >/dev/null", workload("storm"), "5000"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("; lost 0"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("LOST "), std::string::npos);
}
