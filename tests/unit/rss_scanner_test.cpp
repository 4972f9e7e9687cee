// The residency scanner's choice of what to scan again (trace/rss_scanner.h):
// a fault's record is written as the fault begins, before its page is in the
// page table, so a window faulted just before a scan is scanned once more.
// Scans this test process itself (root: pagemap with frame numbers).

#include "trace/rss_scanner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "util/time.h"

namespace {

using vmatrace::DecodedRecord;
using vmatrace::RssScanner;

DecodedRecord record(uint32_t type, uint64_t ts) {
  DecodedRecord d{};
  d.type = type;
  d.hdr.pid = static_cast<uint32_t>(::getpid());
  d.hdr.tid = d.hdr.pid;
  d.hdr.ts = ts;
  return d;
}

TEST(RssScanner, AWindowFaultedJustBeforeAScanIsScannedAgain) {
  vmatrace::RssScanOptions o;
  o.interval_ns = 1'000'000;  // 1 ms
  o.full_every = 1'000'000;   // no periodic whole scans in this test
  o.method =
      RssScanner::probe().empty() ? vmatrace::RssScanMethod::kPagemapScan : vmatrace::RssScanMethod::kPagemapRead;
  RssScanner s(o);
  const uint32_t pid = static_cast<uint32_t>(::getpid());
  const std::vector<std::pair<uint32_t, std::string>> pids = {{pid, "unit"}};
  auto buf = std::make_unique<char[]>(1 << 16);
  const uint64_t addr = reinterpret_cast<uint64_t>(buf.get());

  // The scans' own clock (the records' time) only spaces them out; whether
  // a fault was recent is judged against the real time of the scan.
  const uint64_t t0 = vmatrace::monotonic_ns();
  s.note(record(VMAT_REC_LAYOUT, t0));  // seeded: a whole scan first
  ASSERT_TRUE(s.pending(pid));
  ASSERT_EQ(s.scan(t0, pids).size(), 1u) << "the whole scan of this process";
  EXPECT_FALSE(s.pending(pid));

  // A fault that began a moment ago: its page may not have been in the
  // page table when the scan read it.
  auto fault = record(VMAT_EV_FAULT, vmatrace::monotonic_ns());
  fault.fault.addr = addr;
  s.note(fault);
  ASSERT_TRUE(s.pending(pid));
  ASSERT_EQ(s.scan(t0 + 2'000'000, pids).size(), 1u);
  EXPECT_TRUE(s.pending(pid)) << "a window faulted just before the scan is scanned again";
  ASSERT_EQ(s.scan(t0 + 4'000'000, pids).size(), 1u);
  EXPECT_FALSE(s.pending(pid)) << "and then not again: no fault since";

  // A fault long before the scan: its page was in place; scanned once.
  fault.hdr.ts = vmatrace::monotonic_ns() - 1'000'000'000;
  s.note(fault);
  ASSERT_TRUE(s.pending(pid));
  ASSERT_EQ(s.scan(t0 + 6'000'000, pids).size(), 1u);
  EXPECT_FALSE(s.pending(pid));
}

}  // namespace
