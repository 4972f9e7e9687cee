// Resident memory per VMA from records (core/rss_model.h): the interval map,
// and the Pipeline's residency stage fed with scans and events.

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "core/pmap.h"
#include "core/rss_model.h"
#include "pipeline/pipeline.h"
#include "support/records.h"

namespace vmatrace {
namespace {

using namespace test;
using namespace test::records;

constexpr uint64_t kP = 4096;
constexpr uint64_t kBase = 0x10000000;
constexpr uint64_t kAnonPresent = VMAT_RSS_PRESENT;
constexpr uint64_t kFilePresent = VMAT_RSS_PRESENT | VMAT_RSS_FILE;

std::vector<std::byte> scan_rec(uint32_t pid, uint64_t ts, std::vector<vmat_rss_range> ranges,
                                std::vector<vmat_rss_run> runs, uint64_t kernel_rss = 0) {
  RssScanRecord r;
  r.ranges = std::move(ranges);
  r.runs = std::move(runs);
  r.kernel_rss = kernel_rss;
  r.scan_ns = 1000;
  return encode_rss_scan(make_header(VMAT_REC_RSS, ts, pid, pid, "t"), r);
}

std::vector<std::byte> fault_rec(uint32_t pid, uint64_t ts, uint64_t addr, bool write) {
  vmat_fault_event f{};
  f.hdr = make_header(VMAT_EV_FAULT, ts, pid, pid, "t");
  f.addr = addr;
  f.error_code = write ? 2 | 4 : 4;  // X86_PF_WRITE | X86_PF_USER
  f.flags = VMAT_FAULT_MINOR;
  return bytes_of(f);
}

std::vector<std::byte> sys_rec(uint32_t pid, uint64_t ts, uint32_t sys, int64_t ret, std::vector<uint64_t> args,
                               vmat_vma_info k0 = {}) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, "t");
  e.sys = sys;
  e.ret = ret;
  for (size_t i = 0; i < args.size(); i++) e.args[i] = args[i];
  e.vma[0] = k0;
  return bytes_of(e);
}

TEST(RssMap, AssignClearAndSum) {
  RssMap m;
  std::vector<vmat_rss_run> runs = {{kBase, kBase + 4 * kP, kAnonPresent},
                                    {kBase + 6 * kP, kBase + 8 * kP, kFilePresent},
                                    {kBase + 8 * kP, kBase + 9 * kP, VMAT_RSS_SWAPPED}};
  m.assign(kBase, kBase + 10 * kP, runs);
  EXPECT_EQ(m.sum(kBase, kBase + 10 * kP), (Residency{6 * kP, 4 * kP, kP}));
  m.clear(kBase + 2 * kP, kBase + 7 * kP);  // cuts a run at each end
  EXPECT_EQ(m.sum(kBase, kBase + 10 * kP), (Residency{3 * kP, 2 * kP, kP}));
  EXPECT_EQ(m.runs(), 3u);
  // A later scan replaces only what it covers.
  std::vector<vmat_rss_run> none;
  m.assign(kBase + 8 * kP, kBase + 9 * kP, none);
  EXPECT_EQ(m.sum(kBase, kBase + 10 * kP), (Residency{3 * kP, 2 * kP, 0}));
}

TEST(RssMap, SequentialFaultsStayOneRun) {
  RssMap m;
  for (uint64_t i = 0; i < 100; i++) m.set_page(kBase + i * kP, kAnonPresent);
  EXPECT_EQ(m.runs(), 1u);
  EXPECT_EQ(m.sum(kBase, kBase + 100 * kP).rss, 100 * kP);
  m.set_page(kBase + 50 * kP, kFilePresent);  // a different kind splits it
  EXPECT_EQ(m.runs(), 3u);
  EXPECT_EQ(m.sum(kBase, kBase + 100 * kP), (Residency{100 * kP, 99 * kP, 0}));
}

TEST(RssMap, MoveCarriesPagesAndClipDropsOutsiders) {
  RssMap m;
  std::vector<vmat_rss_run> runs = {{kBase, kBase + 4 * kP, kAnonPresent}};
  m.assign(kBase, kBase + 4 * kP, runs);
  m.move(kBase + kP, 2 * kP, kBase + 100 * kP);
  EXPECT_EQ(m.sum(kBase, kBase + 4 * kP).rss, 2 * kP);
  EXPECT_EQ(m.sum(kBase + 100 * kP, kBase + 102 * kP).rss, 2 * kP);
  Layout l;
  l.seed({anon(kBase + 100 * kP, kBase + 110 * kP)});
  m.clip_to(l);
  EXPECT_EQ(m.sum(0, ~uint64_t{0}).rss, 2 * kP);
}

TEST(RssMap, PfnmapAndHugetlbCountNothingAsInSmaps) {
  RssMap m;
  std::vector<vmat_rss_run> runs = {{kBase, kBase + 4 * kP, kFilePresent}};
  m.assign(kBase, kBase + 4 * kP, runs);
  Vma v = anon(kBase, kBase + 4 * kP);
  EXPECT_EQ(vma_residency(m, v).rss, 4 * kP);
  v.flags |= VM_PFNMAP;
  EXPECT_EQ(vma_residency(m, v).rss, 0u);
}

// The stage over a stream: a scan, then faults and unmaps between scans.
TEST(RssModel, EventsKeepTheScanCurrent) {
  Pipeline p;
  p.enable_rss();
  const uint32_t pid = 42;
  p.feed(layout_rec(pid, 1, {anon(kBase, kBase + 16 * kP)}));
  p.feed(scan_rec(pid, 2, {{kP, kBase + 64 * kP}}, {{kBase, kBase + 2 * kP, kAnonPresent}}, 8 * kP));
  const RssModel* m = p.rss();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP).rss, 2 * kP);
  EXPECT_EQ(m->last_kernel_rss(pid), 8 * kP);
  // Write faults map a page each; a read fault on anonymous memory maps the
  // zero page, which smaps does not count.
  p.feed(fault_rec(pid, 3, kBase + 2 * kP + 5, true));
  p.feed(fault_rec(pid, 4, kBase + 3 * kP, false));
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP), (Residency{3 * kP, 3 * kP, 0}));
  // Unless the kernel said (--rss) that the read fault counted an anonymous
  // page: a kernel without the zero page for it allocates one.
  {
    auto f = fault_rec(pid, 4, kBase + 9 * kP, false);
    vmat_fault_event fe;
    std::memcpy(&fe, f.data(), sizeof(fe));
    fe.flags |= VMAT_FAULT_RSS_ONE | (VMAT_MM_ANON << VMAT_FAULT_RSS_SHIFT);
    p.feed(bytes_of(fe));
    EXPECT_EQ(m->map(pid)->sum(kBase + 9 * kP, kBase + 10 * kP), (Residency{kP, kP, 0}));
    p.feed(sys_rec(pid, 4, VMAT_SYS_MADVISE, 0, {kBase + 9 * kP, kP, 4}));
    EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP), (Residency{3 * kP, 3 * kP, 0}));
  }
  // madvise(DONTNEED) drops pages; MADV_FREE does not (until reclaim).
  p.feed(sys_rec(pid, 5, VMAT_SYS_MADVISE, 0, {kBase, kP, 8}));
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP).rss, 3 * kP);
  p.feed(sys_rec(pid, 6, VMAT_SYS_MADVISE, 0, {kBase, kP, 4}));
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP).rss, 2 * kP);
  // A failed munmap changes nothing; a good one drops its pages.
  p.feed(sys_rec(pid, 7, VMAT_SYS_MUNMAP, -22, {kBase, 16 * kP}));
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP).rss, 2 * kP);
  p.feed(sys_rec(pid, 8, VMAT_SYS_MUNMAP, 0, {kBase + 2 * kP, kP}));
  EXPECT_EQ(m->map(pid)->sum(kBase, kBase + 16 * kP).rss, kP);
  EXPECT_EQ(m->scans(), 1u);
  EXPECT_EQ(m->scan_cpu_ns(), 1000u);
}

TEST(RssModel, FileFaultsAreFileUntilWritten) {
  Pipeline p;
  p.enable_rss();
  const uint32_t pid = 7;
  Vma f = anon(kBase, kBase + 8 * kP, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE);
  f.path = "/tmp/data";
  f.ino = 5;
  f.pgoff = 0;
  p.feed(layout_rec(pid, 1, {f}));
  p.feed(fault_rec(pid, 2, kBase, false));
  const RssMap* m = p.rss()->map(pid);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->sum(kBase, kBase + 8 * kP), (Residency{kP, 0, 0}));
  p.feed(fault_rec(pid, 3, kBase, true));  // copy on write: now an anonymous page
  EXPECT_EQ(m->sum(kBase, kBase + 8 * kP), (Residency{kP, kP, 0}));
}

TEST(RssModel, MremapMovesAndForkCopiesAnonymousPages) {
  Pipeline p;
  p.enable_rss();
  const uint32_t pid = 9;
  p.feed(layout_rec(pid, 1, {anon(kBase, kBase + 4 * kP)}));
  p.feed(scan_rec(pid, 2, {{kBase, kBase + 4 * kP}}, {{kBase, kBase + 4 * kP, kAnonPresent}}));
  const uint64_t to = kBase + 1000 * kP;
  p.feed(sys_rec(pid, 3, VMAT_SYS_MREMAP, static_cast<int64_t>(to), {kBase, 4 * kP, 8 * kP, 1, 0},
                 kinfo(to, to + 8 * kP)));
  const RssMap* m = p.rss()->map(pid);
  EXPECT_EQ(m->sum(kBase, kBase + 4 * kP).rss, 0u);
  EXPECT_EQ(m->sum(to, to + 8 * kP).rss, 4 * kP);
  vmat_fork_event fk{};
  fk.hdr = make_header(VMAT_EV_FORK, 4, pid, pid, "t");
  fk.child_pid = fk.child_tid = 10;
  fk.flags = VMAT_FORK_TRACED;
  p.feed(bytes_of(fk));
  ASSERT_TRUE(p.rss()->map(10));
  EXPECT_EQ(p.rss()->map(10)->sum(to, to + 8 * kP).rss, 4 * kP);
}

std::vector<std::byte> rss_stat_rec(uint32_t pid, uint64_t ts, uint32_t member, int64_t delta, uint32_t flags,
                                    uint64_t addr, uint64_t mm_key, std::array<int64_t, 4> pages = {}) {
  vmat_rss_stat_event e{};
  e.hdr = make_header(VMAT_EV_RSS_STAT, ts, pid, pid, "t");
  e.member = member;
  e.delta = delta;
  e.flags = flags;
  e.addr = addr;
  e.mm_key = mm_key;
  for (size_t i = 0; i < 4; i++) e.pages[i] = pages[i];
  return bytes_of(e);
}

// The kernel's counters: a base, then deltas and the faults' single pages;
// a record of another mm (exec's old one) changes nothing; a THP fault
// places its 2 MiB when it fits in the VMA.
TEST(RssModel, KernelCountersFromRssStatRecords) {
  Pipeline p;
  p.enable_rss();
  const uint32_t pid = 42;
  const uint64_t huge = 2u << 20, region = 0x40000000;
  p.feed(layout_rec(pid, 1, {anon(region, region + 4 * huge)}));
  const RssModel* m = p.rss();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->kernel_counters(pid));
  p.feed(rss_stat_rec(pid, 2, VMAT_MM_ANON, 0, VMAT_RSS_STAT_BASE, 0, 7, {10, 20, 1, 2}));
  EXPECT_EQ(m->kernel_counters(pid), (KernelRss{10 * kP, 20 * kP, 1 * kP, 2 * kP}));
  EXPECT_EQ(m->kernel_counters(pid)->rss(), 32 * kP);
  // A fault that mapped one anonymous page says so in its flags.
  auto f = fault_rec(pid, 3, region + 5, true);
  vmat_fault_event fe;
  std::memcpy(&fe, f.data(), sizeof(fe));
  fe.flags |= VMAT_FAULT_RSS_ONE | (VMAT_MM_ANON << VMAT_FAULT_RSS_SHIFT);
  p.feed(bytes_of(fe));
  EXPECT_EQ(m->kernel_counters(pid)->anon, 21 * kP);
  // A THP fault: 512 pages at once, placed around the address.
  p.feed(rss_stat_rec(pid, 4, VMAT_MM_ANON, 512, VMAT_RSS_STAT_IN_FAULT, region + huge + 77, 7));
  EXPECT_EQ(m->kernel_counters(pid)->anon, 533 * kP);
  EXPECT_EQ(m->map(pid)->sum(region + huge, region + 2 * huge), (Residency{huge, huge, 0}));
  // Another mm's change (the key differs) is not this process's now.
  p.feed(rss_stat_rec(pid, 5, VMAT_MM_ANON, -500, 0, 0, 8));
  EXPECT_EQ(m->kernel_counters(pid)->anon, 533 * kP);
  p.feed(rss_stat_rec(pid, 6, VMAT_MM_FILE, -4, 0, 0, 7));
  EXPECT_EQ(m->kernel_counters(pid)->file, 6 * kP);
  // A base (the frontend's read of the BPF side's counters) replaces them.
  p.feed(rss_stat_rec(pid, 7, 0, 0, VMAT_RSS_STAT_BASE, 0, 7, {1, 2, 3, 4}));
  EXPECT_EQ(m->kernel_counters(pid), (KernelRss{kP, 2 * kP, 3 * kP, 4 * kP}));
  // A huge fault that does not fit the VMA places nothing (the scan will).
  p.feed(rss_stat_rec(pid, 8, VMAT_MM_ANON, 512, VMAT_RSS_STAT_IN_FAULT, region + 4 * huge + 5, 7));
  EXPECT_EQ(m->map(pid)->sum(region + 3 * huge, region + 5 * huge).rss, 0u);
}

TEST(RssRecord, RoundTripsAndRejectsBadCounts) {
  auto b = scan_rec(1, 2, {{kP, 10 * kP}}, {{kP, 3 * kP, kAnonPresent}, {5 * kP, 6 * kP, kFilePresent}}, 77);
  auto d = decode(b);
  ASSERT_TRUE(d.rss);
  EXPECT_EQ(d.rss->ranges.size(), 1u);
  EXPECT_EQ(d.rss->runs.size(), 2u);
  EXPECT_EQ(d.rss->kernel_rss, 77u);
  EXPECT_EQ(d.rss->runs[1].flags, kFilePresent);
  // A count that does not match the size, unsorted runs: malformed.
  auto bad = b;
  bad[offsetof(vmat_rss_scan, nruns)] = std::byte{3};
  std::string err;
  EXPECT_FALSE(decode_record(keep(bad), &err));
  auto unsorted = scan_rec(1, 2, {{kP, 10 * kP}}, {{5 * kP, 6 * kP, kAnonPresent}, {kP, 3 * kP, kAnonPresent}});
  EXPECT_FALSE(decode_record(keep(unsorted), &err));
  EXPECT_NE(err.find("sorted"), std::string::npos);
}

TEST(RssPmap, TextAndJsonCarryTheColumns) {
  Layout l;
  l.seed({anon(kBase, kBase + 4 * kP)});
  RssMap m;
  std::vector<vmat_rss_run> runs = {{kBase, kBase + 3 * kP, kAnonPresent}};
  m.assign(kBase, kBase + 4 * kP, runs);
  std::string t = pmap_text(l, "", &m);
  EXPECT_NE(t.find("Anonymous"), std::string::npos) << t;
  EXPECT_NE(t.find("Rss 12 KiB, Anonymous 12 KiB, Swap 0 KiB"), std::string::npos) << t;
  std::string j = pmap_rss_json(3, "t", 5, l, "", m, 12288);
  EXPECT_NE(j.find("\"vmas\":[{\"start\":\"0x10000000\",\"end\":\"0x10004000\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"rss\":12288,\"anon\":12288,\"swap\":0}"), std::string::npos) << j;
}

}  // namespace
}  // namespace vmatrace
