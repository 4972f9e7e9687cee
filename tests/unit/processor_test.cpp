// The Processor fed synthetic records: decoding checks, seeding, kernel
// reconciliation, fork copies, exec walks, and robustness against garbage.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/proc_maps.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "core/vm_flags.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

TEST(Processor, MmapAfterSeedAddsAVma) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000)})), nullptr);
  p.apply(decode(bytes_of(mmap_event(10, 200, 0x40000, 0x1000, kinfo(0x40000, 0x41000)))), nullptr);
  ASSERT_NE(p.process(10), nullptr);
  EXPECT_EQ(p.process(10)->layout.size(), 2u);
}

TEST(Processor, KernelViewWinsOverTheModel) {
  // The kernel reports the new mapping merged with its neighbour: the model
  // must agree even where its own rules would not have merged.
  Processor p;
  Vma left = anon(0x10000, 0x20000);
  left.flags |= VM_DONTCOPY;  // the model would refuse this merge
  p.apply(decode(layout_rec(10, 100, {left})), nullptr);
  p.apply(decode(bytes_of(mmap_event(10, 200, 0x20000, 0x1000, kinfo(0x10000, 0x21000)))), nullptr);
  auto vmas = p.process(10)->layout.vmas();
  ASSERT_EQ(vmas.size(), 1u);
  EXPECT_EQ(vmas[0].start, 0x10000u);
  EXPECT_EQ(vmas[0].end, 0x21000u);
}

TEST(Processor, RecordsOlderThanTheSeedAreNotApplied) {
  Processor p;
  p.apply(decode(layout_rec(10, 500, {anon(0x10000, 0x20000)})), nullptr);
  p.apply(decode(bytes_of(mmap_event(10, 400, 0x40000, 0x1000, kinfo(0x40000, 0x41000)))), nullptr);
  EXPECT_EQ(p.process(10)->layout.size(), 1u);
}

TEST(Processor, FailedSyscallsChangeNothing) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000)})), nullptr);
  auto e = mmap_event(10, 200, 0, 0x1000, {});
  e.ret = -12;
  p.apply(decode(bytes_of(e)), nullptr);
  EXPECT_EQ(p.process(10)->layout.size(), 1u);
}

namespace {

// addr, len, arg2 of a madvise/mprotect record returning ret (no kernel VMA:
// a failed call's record carries none).
vmat_syscall_event range_event(uint32_t sys, uint64_t ts, uint64_t addr, uint64_t len, uint64_t arg2, int64_t ret) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, 10, 10, "t");
  e.sys = sys;
  e.enter_ts = ts - 1;
  e.ret = ret;
  e.args[0] = addr;
  e.args[1] = len;
  e.args[2] = arg2;
  return e;
}

}  // namespace

// stress-ng --madvise: per-page advice splits its buffer into VMAs that
// differ only in VM_RAND_READ/VM_SEQ_READ, then madvise(buf, 4 GiB - 64 KiB,
// MADV_NORMAL) fails with ENOMEM (the range runs past the last VMA).
// madvise_walk_vmas() has cleared the flags of every VMA in the range by
// then, and the pieces merged; a model that skipped the failed call kept
// them apart until the buffer was unmapped (a stop in between differed).
TEST(Processor, MadviseFailingWithEnomemStillChangedEveryVmaInItsRange) {
  Processor p;
  Vma rand = anon(0x10000, 0x11000, kRW | VM_RAND_READ);
  Vma plain = anon(0x11000, 0x12000);
  Vma seq = anon(0x12000, 0x13000, kRW | VM_SEQ_READ);
  Vma far = anon(0x20000, 0x21000, kRW | VM_RAND_READ);  // past a hole
  p.apply(decode(layout_rec(10, 100, {rand, plain, seq, far})), nullptr);
  p.apply(decode(bytes_of(range_event(VMAT_SYS_MADVISE, 200, 0x10000, 0xffff0000, 0 /* MADV_NORMAL */, -12))), nullptr);
  auto vmas = p.process(10)->layout.vmas();
  ASSERT_EQ(vmas.size(), 2u) << "the three pieces merged; the VMA past the hole changed too";
  EXPECT_EQ(vmas[0].start, 0x10000u);
  EXPECT_EQ(vmas[0].end, 0x13000u);
  EXPECT_EQ(vmas[0].flags, kRW);
  EXPECT_EQ(vmas[1].start, 0x20000u);
  EXPECT_EQ(vmas[1].flags, kRW);
}

// do_mprotect_pkey() stops at a hole with ENOMEM: the VMAs before it changed.
TEST(Processor, MprotectFailingWithEnomemChangedTheVmasBeforeTheHole) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x12000), anon(0x20000, 0x21000)})), nullptr);
  p.apply(decode(bytes_of(range_event(VMAT_SYS_MPROTECT, 200, 0x11000, 0x20000, 1 /* PROT_READ */, -12))), nullptr);
  auto vmas = p.process(10)->layout.vmas();
  ASSERT_EQ(vmas.size(), 3u);
  EXPECT_EQ(vmas[0].end, 0x11000u);
  EXPECT_EQ(vmas[0].flags, kRW);
  EXPECT_EQ(vmas[1].start, 0x11000u);
  EXPECT_EQ(vmas[1].end, 0x12000u);
  EXPECT_EQ(vmas[1].flags & (VM_READ | VM_WRITE), VM_READ);
  EXPECT_EQ(vmas[2].flags, kRW) << "past the hole: untouched";
}

// Other errors still mean nothing was done (EINVAL: bad advice, checked
// before any VMA; EACCES from mprotect's first VMA).
TEST(Processor, MadviseAndMprotectFailingOtherwiseChangeNothing) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x12000, kRW | VM_RAND_READ)})), nullptr);
  p.apply(decode(bytes_of(range_event(VMAT_SYS_MADVISE, 200, 0x10000, 0x1000, 0, -22))), nullptr);
  p.apply(decode(bytes_of(range_event(VMAT_SYS_MPROTECT, 300, 0x10000, 0x1000, 1, -13))), nullptr);
  auto vmas = p.process(10)->layout.vmas();
  ASSERT_EQ(vmas.size(), 1u);
  EXPECT_EQ(vmas[0].flags, kRW | VM_RAND_READ);
}

TEST(Processor, ForkCopiesTheParentsLayout) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000), anon(0x30000, 0x31000)})), nullptr);
  vmat_fork_event f{};
  f.hdr = make_header(VMAT_EV_FORK, 200, 10, 10, "t");
  f.child_pid = 11;
  f.child_tid = 11;
  f.flags = VMAT_FORK_TRACED;
  p.apply(decode(bytes_of(f)), nullptr);
  ASSERT_NE(p.process(11), nullptr);
  EXPECT_EQ(format_proc_maps(p.process(11)->layout), format_proc_maps(p.process(10)->layout));
}

TEST(Processor, ExecWalkReplacesTheLayout) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000)})), nullptr);
  vmat_exec_event x{};
  x.hdr = make_header(VMAT_EV_EXEC, 200, 10, 10, "t");
  x.filename_len = 5;
  p.apply(decode(bytes_of(x, std::string_view("/bin\0", 5))), nullptr);
  EXPECT_FALSE(p.process(10)->seeded);
  vmat_vma_snapshot_event s{};
  s.hdr = make_header(VMAT_EV_VMA_SNAPSHOT, 201, 10, 10, "t");
  s.vma = kinfo(0x50000, 0x52000);
  p.apply(decode(bytes_of(s)), nullptr);
  s.vma = {};
  s.flags = VMAT_SNAP_LAST;
  s.seq = 1;
  p.apply(decode(bytes_of(s)), nullptr);
  ASSERT_TRUE(p.process(10)->seeded);
  auto vmas = p.process(10)->layout.vmas();
  ASSERT_EQ(vmas.size(), 1u);
  EXPECT_EQ(vmas[0].start, 0x50000u);
  EXPECT_EQ(p.process(10)->exe, "/bin");
}

// bpf_iter_task_vma_new() fails (-EBUSY) when the new mm's mmap lock is
// busy, and a full ring drops VMAs of a walk: neither is the layout, which
// is then unknown (the session reads /proc), never an empty or partial seed.
TEST(Processor, ExecWalkThatFailedOrCameInPartLeavesTheLayoutUnknown) {
  for (const bool failed : {true, false}) {
    Processor p;
    p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000)})), nullptr);
    vmat_exec_event x{};
    x.hdr = make_header(VMAT_EV_EXEC, 200, 10, 10, "t");
    p.apply(decode(bytes_of(x)), nullptr);
    vmat_vma_snapshot_event s{};
    s.hdr = make_header(VMAT_EV_VMA_SNAPSHOT, 201, 10, 10, "t");
    if (!failed) {
      s.vma = kinfo(0x50000, 0x52000);
      p.apply(decode(bytes_of(s)), nullptr);  // 1 of 2: the other was lost
    }
    s.vma = {};
    s.flags = VMAT_SNAP_LAST | (failed ? VMAT_SNAP_FAILED : 0);
    s.err = failed ? -16 : 0;
    s.seq = failed ? 0 : 2;
    p.apply(decode(bytes_of(s)), nullptr);
    const ProcessState* st = p.process(10);
    ASSERT_NE(st, nullptr);
    EXPECT_FALSE(st->seeded);
    EXPECT_FALSE(st->awaiting_exec_walk);
    EXPECT_EQ(p.stats().exec_walks_incomplete, 1u);
    EXPECT_NE(st->unknown_reason.find(failed ? "mmap lock was busy" : "1 of the 2 VMAs"), std::string::npos)
        << st->unknown_reason;
    // The layout read from /proc then seeds it.
    p.apply(decode(layout_rec(10, 300, {anon(0x60000, 0x61000)})), nullptr);
    EXPECT_TRUE(p.process(10)->seeded);
    EXPECT_TRUE(p.process(10)->unknown_reason.empty());
  }
}

TEST(Processor, GroupExitEndsTheProcess) {
  Processor p;
  p.apply(decode(layout_rec(10, 100, {anon(0x10000, 0x20000)})), nullptr);
  vmat_exit_event x{};
  x.hdr = make_header(VMAT_EV_EXIT, 200, 10, 10, "t");
  x.flags = VMAT_EXIT_GROUP;
  p.apply(decode(bytes_of(x)), nullptr);
  EXPECT_EQ(p.process(10), nullptr);
  ASSERT_EQ(p.ended().size(), 1u);
  EXPECT_TRUE(p.ended()[0].exited);
}

TEST(Records, MalformedRecordsAreRejectedNotTrusted) {
  std::string err;
  std::vector<std::byte> tiny(10);
  EXPECT_FALSE(decode_record(tiny, &err));
  auto e = bytes_of(mmap_event(1, 1, 0x1000, 0x1000, {}));
  // path_len pointing past the record
  uint32_t big = 5000;
  std::memcpy(e.data() + offsetof(vmat_syscall_event, path_len), &big, 4);
  EXPECT_FALSE(decode_record(e, &err));
  // a size field that disagrees
  auto f = bytes_of(mmap_event(1, 1, 0x1000, 0x1000, {}));
  uint32_t wrong = 8;
  std::memcpy(f.data() + offsetof(vmat_hdr, size), &wrong, 4);
  EXPECT_FALSE(decode_record(f, &err));
  // a layout record claiming more VMAs than it holds
  auto l = layout_rec(1, 1, {anon(0x1000, 0x2000)});
  uint32_t n = 1u << 30;
  std::memcpy(l.data() + sizeof(vmat_hdr) + 4, &n, 4);
  EXPECT_FALSE(decode_record(l, &err));
}

TEST(Records, RandomBytesNeverCrashTheProcessor) {
  std::mt19937 rng(42);
  Processor p;
  for (int i = 0; i < 20000; i++) {
    std::vector<std::byte> b(sizeof(vmat_hdr) + rng() % 300);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    uint32_t type = 1 + rng() % 6;
    if (rng() % 4 == 0) type = 0x8001 + rng() % 3;
    std::memcpy(b.data(), &type, 4);
    auto size = static_cast<uint32_t>(b.size());
    std::memcpy(b.data() + 4, &size, 4);
    std::string err;
    if (auto d = decode_record(b, &err)) p.apply(*d, nullptr);
  }
  SUCCEED();
}

TEST(Records, LayoutRecordRoundTrips) {
  Vma f = anon(0x1000, 0x3000);
  f.path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  f.dev = (254u << 20) | 1;
  f.ino = 1234;
  f.pgoff = 7;
  Vma s = anon(0x7000, 0x8000);
  s.special = "[vdso]";
  auto d = decode(layout_rec(3, 9, {f, s}));
  ASSERT_TRUE(d.layout);
  ASSERT_EQ(d.layout->vmas.size(), 2u);
  EXPECT_EQ(d.layout->vmas[0].path, f.path);
  EXPECT_EQ(d.layout->vmas[0].ino, 1234u);
  EXPECT_EQ(d.layout->vmas[0].pgoff, 7u);
  EXPECT_EQ(d.layout->vmas[1].special, "[vdso]");
}

TEST(Decode, NamesAndEscaping) {
  EXPECT_EQ(prot_names(0), "PROT_NONE");
  EXPECT_EQ(prot_names(3), "PROT_READ|PROT_WRITE");
  EXPECT_EQ(mmap_flag_names(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
  EXPECT_EQ(mremap_flag_names(1), "MREMAP_MAYMOVE");
  EXPECT_EQ(errno_name(12), "ENOMEM");
  EXPECT_EQ(human_size(4096), "4.0 KiB");
  EXPECT_EQ(human_size(100), "100 B");
  EXPECT_EQ(escape_text("a\nb\x1b[31m"), "a\\nb\\x1b[31m");
  EXPECT_EQ(escape_json("q\"\\\n\x01"), "q\\\"\\\\\\n\\u0001");
  EXPECT_EQ(escape_json(std::string("\xff", 1)), "\\ufffd");
  EXPECT_EQ(escape_json("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(Processor, BrkOnAHeapWithHolesReportsThePieceAtTheBreak) {
  // HH-HH-HH -> HH-HH-HHHH: the result and the VMA changes are the heap
  // piece the break moved, not every piece from start_brk.
  struct Last : RecordSink {
    Applied applied;
    void on_record(const DecodedRecord&, const Applied& a, const ProcessState*) override { applied = a; }
  } sink;
  Processor p;
  LayoutRecord l;
  l.reason = LayoutReason::kAttach;
  l.start_brk = 0x100000, l.brk = 0x108000;
  l.vmas = {anon(0x100000, 0x102000), anon(0x103000, 0x105000), anon(0x106000, 0x108000)};
  p.apply(decode(encode_layout(make_header(VMAT_REC_LAYOUT, 100, 10, 10, "t"), l)), &sink);
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, 200, 10, 10, "t");
  e.sys = VMAT_SYS_BRK;
  e.args[0] = 0x10a000;
  e.ret = 0x10a000;
  e.start_brk = 0x100000, e.brk = 0x10a000;
  e.vma[0] = kinfo(0x106000, 0x10a000);
  p.apply(decode(bytes_of(e)), &sink);
  ASSERT_EQ(p.process(10)->layout.size(), 3u);
  ASSERT_EQ(sink.applied.change.result.size(), 1u);
  EXPECT_EQ(sink.applied.change.result[0].start, 0x106000u);
  EXPECT_EQ(sink.applied.change.result[0].end, 0x10a000u);
  ASSERT_EQ(sink.applied.changes.size(), 1u);
  EXPECT_EQ(sink.applied.changes[0].kind, VmaChangeKind::kExpand);
}
