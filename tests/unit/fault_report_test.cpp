// The page-fault report from synthetic records: ranking, splits, shares,
// range coalescing, code locations, timeline, threads, JSON and folded
// output, and the kernel-aggregate (summary mode) entry points.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/records.h"
#include "report/fault_report.h"
#include "support/records.h"
#include "vmatrace/abi/events.h"

using namespace vmatrace;

namespace {

constexpr uint32_t kPfUser = 1u << 2, kPfWrite = 1u << 1, kPfInstr = 1u << 4;

// VMAs with their ids: the report names VMAs by id.
Vma anon(uint64_t start, uint64_t end, uint64_t id) {
  Vma v = test::records::anon(start, end, VM_READ | VM_WRITE);
  v.id = id;
  return v;
}

Vma file(uint64_t start, uint64_t end, const std::string& path, uint64_t pgoff, uint64_t id) {
  Vma v;
  v.start = start, v.end = end, v.flags = VM_READ | VM_EXEC, v.pgoff = pgoff, v.ino = 42, v.path = path, v.id = id;
  return v;
}

struct Fixture {
  ProcessState proc;
  FaultReport report;
  explicit Fixture(FaultReportOptions o = {}) : report(o) {
    proc.pid = 100;
    proc.comm = "app";
    proc.layout.seed({file(0x400000, 0x401000, "/usr/bin/app", 0, 1), anon(0x10000000, 0x10100000, 2),
                      anon(0x20000000, 0x20010000, 3), file(0x7f0000000000, 0x7f0000010000, "/lib/libc.so.6", 2, 4)});
  }
  void fault(uint64_t ts, uint32_t tid, uint64_t addr, uint64_t ip, uint32_t ec, uint32_t flags) {
    DecodedRecord r;
    r.type = VMAT_EV_FAULT;
    r.hdr.type = VMAT_EV_FAULT;
    r.hdr.ts = ts, r.hdr.pid = 100, r.hdr.tid = tid;
    r.comm = tid == 100 ? "app" : "worker";
    r.fault = vmat_fault_event{};
    r.fault.addr = addr, r.fault.ip = ip, r.fault.error_code = ec, r.fault.flags = flags;
    Applied a;
    if (const Vma* v = proc.layout.find(addr)) a.fault_vma = *v;
    report.on_record(r, a, &proc);
  }
  void start(uint64_t ts) {
    DecodedRecord r;
    r.type = VMAT_REC_NOTE;
    r.hdr.ts = ts;
    r.note = NoteRecord{kNoteSessionStart, ""};
    report.on_record(r, Applied{}, nullptr);
  }
};

}  // namespace

TEST(FaultReport, RanksVmasWithSplitsAndShares) {
  Fixture f;
  f.start(1'000'000'000);
  // 8 write faults (minor) in the first anon, 2 read majors in the second, 1 exec in libc.
  for (int i = 0; i < 8; i++)
    f.fault(1'000'000'000 + i, 100, 0x10000000 + i * 4096, 0x400123, kPfUser | kPfWrite, VMAT_FAULT_MINOR);
  for (int i = 0; i < 2; i++)
    f.fault(1'150'000'000, 101, 0x20000000 + i * 4096, 0x7f0000000040, kPfUser, VMAT_FAULT_MAJOR);
  f.fault(1'250'000'000, 100, 0x7f0000000040, 0x7f0000000040, kPfUser | kPfInstr, VMAT_FAULT_MINOR);
  auto v = f.report.by_vma();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].start, 0x10000000u);
  EXPECT_EQ(v[0].c.faults, 8u);
  EXPECT_EQ(v[0].c.write, 8u);
  EXPECT_EQ(v[0].c.minor, 8u);
  EXPECT_EQ(v[1].c.major, 2u);
  EXPECT_EQ(v[1].c.read, 2u);
  EXPECT_EQ(v[2].name, "/lib/libc.so.6");
  EXPECT_EQ(v[2].c.exec, 1u);
  EXPECT_EQ(f.report.total().faults, 11u);
  EXPECT_EQ(f.report.total().major, 2u);
  EXPECT_EQ(f.report.attributed(), 11u);
  std::string j = f.report.json();
  EXPECT_NE(j.find("\"start\":\"0x10000000\",\"end\":\"0x10100000\",\"perms\":\"rw-p\",\"path\":\"\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"faults\":8,\"read\":0,\"write\":8,\"exec\":0,\"major\":0,\"minor\":8,\"share\":0.727273"),
            std::string::npos)
      << j;
  for (const char* k : {"\"by_vma\"", "\"by_ip\"", "\"by_range\"", "\"timeline\"", "\"by_thread\"", "\"by_process\""})
    EXPECT_NE(j.find(k), std::string::npos) << k;
}

TEST(FaultReport, CoalescesAdjacentPagesIntoRanges) {
  Fixture f;
  for (uint64_t p : {0u, 1u, 2u, 3u, 7u, 8u})
    f.fault(1, 100, 0x10000000 + p * 4096 + 5, 0x400010, kPfUser | kPfWrite, 0);
  f.fault(1, 100, 0x10000000 + 3 * 4096, 0x400010, kPfUser | kPfWrite, 0);  // page 3 again
  auto r = f.report.by_range();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].start, 0x10000000u);
  EXPECT_EQ(r[0].end, 0x10004000u);
  EXPECT_EQ(r[0].faults, 5u);
  EXPECT_EQ(r[1].start, 0x10007000u);
  EXPECT_EQ(r[1].end, 0x10009000u);
  EXPECT_EQ(r[1].vma, "anon 10000000-10100000");
}

TEST(FaultReport, CodeLocationsAreObjectPlusFileOffset) {
  Fixture f;
  f.fault(1, 100, 0x10000000, 0x7f0000000100, kPfUser | kPfWrite, 0);
  f.fault(1, 100, 0x10001000, 0xffffffff81000000, kPfWrite, VMAT_FAULT_KERNEL_MODE);
  f.fault(1, 100, 0x10002000, 0x10000010, kPfUser | kPfWrite, 0);
  f.fault(1, 100, 0x10003000, 0x5000, kPfUser | kPfWrite, 0);
  auto ips = f.report.by_ip();
  ASSERT_EQ(ips.size(), 4u);
  std::set<std::string> locs;
  for (const auto& r : ips) locs.insert(r.location);
  EXPECT_TRUE(locs.count("libc.so.6+0x2100"));  // pgoff 2 pages + 0x100
  EXPECT_TRUE(locs.count("[kernel]"));
  EXPECT_TRUE(locs.count("anon@10000000+0x10"));
  EXPECT_TRUE(locs.count("0x5000"));
}

TEST(FaultReport, TimelineThreadsAndFilter) {
  FaultReportOptions o;
  o.interval_ns = 100'000'000;
  Fixture f(o);
  f.start(1'000'000'000);
  f.fault(1'010'000'000, 100, 0x10000000, 0x400000, kPfUser, VMAT_FAULT_MINOR);
  f.fault(1'320'000'000, 101, 0x10001000, 0x400000, kPfUser, VMAT_FAULT_MINOR);
  f.fault(1'330'000'000, 101, 0x10002000, 0x400000, kPfUser, VMAT_FAULT_MAJOR);
  auto tl = f.report.timeline();
  ASSERT_EQ(tl.size(), 4u);  // empty buckets in between included
  EXPECT_EQ(tl[0].c.faults, 1u);
  EXPECT_EQ(tl[1].c.faults, 0u);
  EXPECT_EQ(tl[3].c.faults, 2u);
  EXPECT_EQ(tl[3].c.major, 1u);
  auto th = f.report.by_thread();
  ASSERT_EQ(th.size(), 2u);
  EXPECT_EQ(th[0].tid, 101u);
  EXPECT_EQ(th[0].comm, "worker");
  auto pr = f.report.by_process();
  ASSERT_EQ(pr.size(), 1u);
  EXPECT_EQ(pr[0].c.faults, 3u);

  FaultReportOptions other;
  other.pid = 7;
  Fixture g(other);
  g.fault(1, 100, 0x10000000, 0x400000, kPfUser, 0);
  EXPECT_EQ(g.report.total().faults, 0u);
}

TEST(FaultReport, UnknownMajorMinorAndUnattributed) {
  Fixture f;
  f.fault(1, 100, 0x10000000, 0x400000, kPfUser | kPfWrite, 0);  // tracepoint-only record
  f.fault(1, 100, 0x30000000, 0x400000, kPfUser | kPfWrite, 0);  // outside every VMA
  EXPECT_EQ(f.report.total().faults, 2u);
  EXPECT_EQ(f.report.total().major + f.report.total().minor, 0u);
  EXPECT_EQ(f.report.attributed(), 1u);
  EXPECT_NE(f.report.text().find("major/minor unknown"), std::string::npos);
}

TEST(FaultReport, FoldedStacksPerObjectIpAndVma) {
  Fixture f;
  for (int i = 0; i < 3; i++) f.fault(1, 100, 0x10000000 + i * 4096, 0x400123, kPfUser | kPfWrite, 0);
  EXPECT_EQ(f.report.folded(), "app;app;app+0x123;anon 10000000-10100000 3\n");
}

TEST(FaultReport, KernelAggregatesFeedTheSameRankings) {
  FaultReport r;
  r.set_mode("summary");
  FaultCounts big;
  big.faults = 4096, big.write = 4096, big.minor = 4096;
  FaultCounts small;
  small.faults = 16, small.write = 16, small.minor = 16;
  r.add_vma(5, "app", 0x20000000, 0x20010000, "", "rw-p", small);
  r.add_vma(5, "app", 0x10000000, 0x11000000, "", "rw-p", big);
  for (uint64_t p = 0; p < 16; p++) r.add_page(5, 0x20000000 + p * 4096, 0x20000000, 1);
  r.add_ip(5, 0x400123, "app+0x123", big);
  r.add_thread(5, 5, "app", big);
  auto v = r.by_vma();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].c.faults, 4096u);
  EXPECT_EQ(v[1].c.faults, 16u);
  ASSERT_EQ(r.by_range().size(), 1u);
  EXPECT_EQ(r.by_range()[0].end - r.by_range()[0].start, 16u * 4096);
  EXPECT_EQ(r.total().faults, 4112u);
  EXPECT_NE(r.json().find("\"mode\":\"summary\",\"majmin_known\":true"), std::string::npos);
}
