// The Processor on the syscalls added after the first six (mlock family,
// pkey_mprotect, shmat, shmdt): records as the BPF side emits them, applied
// to a seeded layout, their VMA changes by inference and from the kernel's
// stores, the printers' decoding, and malloc attribution leaving them out.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/proc_maps.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "core/vm_flags.h"
#include "output/printer.h"
#include "support/records.h"
#include "sym/malloc_tracker.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

constexpr uint32_t kPid = 10;
constexpr uint64_t kA = 0x7f0000010000;  // a 10-page anonymous VMA
constexpr uint64_t kShm = 0x7f0000100000;

DecodedRecord sys(uint32_t which, uint64_t ts, int64_t ret, std::initializer_list<uint64_t> args, vmat_vma_info v0 = {},
                  vmat_vma_info v1 = {}, std::string_view path = {}) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, kPid, kPid, "t");
  e.sys = which;
  e.ret = ret;
  e.enter_ts = ts - 1;
  size_t i = 0;
  for (auto a : args) e.args[i++] = a;
  e.vma[0] = v0;
  e.vma[1] = v1;
  std::string tail;
  if (!path.empty()) tail = std::string(path) + '\0';
  e.path_len = static_cast<uint32_t>(tail.size());
  return decode(bytes_of(e, tail));
}

struct Collect : RecordSink {
  std::vector<Applied> applied;
  void on_record(const DecodedRecord&, const Applied& a, const ProcessState*) override { applied.push_back(a); }
};

void seed(Processor& p, Collect& c) { p.apply(decode(layout_rec(kPid, 2, {anon(kA, kA + 10 * P)})), &c); }

// A FILE* the Printer writes into, read back as a string.
class MemStream {
 public:
  MemStream() : f_(::open_memstream(&buf_, &len_)) {}
  ~MemStream() {
    if (f_) std::fclose(f_);
    std::free(buf_);
  }
  MemStream(const MemStream&) = delete;
  MemStream& operator=(const MemStream&) = delete;
  std::FILE* file() { return f_; }
  std::string str() {
    std::fflush(f_);
    return std::string(buf_, len_);
  }

 private:
  char* buf_ = nullptr;
  size_t len_ = 0;
  std::FILE* f_;
};

std::string maps(const Processor& p) { return format_proc_maps(p.process(kPid)->layout); }

size_t count(const std::vector<VmaChange>& ch, VmaChangeKind k) {
  size_t n = 0;
  for (const auto& c : ch) n += c.kind == k;
  return n;
}

}  // namespace

TEST(ProcessorLock, MlockSplitsMunlockMergesWithTheirChanges) {
  Processor p;
  Collect c;
  seed(p, c);
  // mlock(kA + 3 pages, 3 pages); the kernel's VMA at each end of the range.
  p.apply(sys(VMAT_SYS_MLOCK, 10, 0, {kA + 3 * P, 3 * P}, kinfo(kA + 3 * P, kA + 6 * P, kRW | VM_LOCKED)), &c);
  const auto& l = p.process(kPid)->layout;
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.find(kA + 3 * P)->flags, kRW | VM_LOCKED);
  ASSERT_EQ(c.applied.back().changes.size(), 1u);
  EXPECT_EQ(c.applied.back().changes[0].kind, VmaChangeKind::kSplit);
  EXPECT_EQ(c.applied.back().cause, "mlock");
  p.apply(sys(VMAT_SYS_MUNLOCK, 20, 0, {kA + 3 * P, 3 * P}, kinfo(kA, kA + 10 * P, kRW)), &c);
  EXPECT_EQ(l.size(), 1u);
  ASSERT_EQ(c.applied.back().changes.size(), 1u);
  EXPECT_EQ(c.applied.back().changes[0].kind, VmaChangeKind::kMerge);
  // mlock2(MLOCK_ONFAULT): VM_LOCKONFAULT too.
  p.apply(sys(VMAT_SYS_MLOCK2, 30, 0, {kA, P, vmatrace::abi::kMlockOnFault}), &c);
  EXPECT_EQ(l.find(kA)->flags, kRW | VM_LOCKED | VM_LOCKONFAULT);
  // A failed call changes nothing.
  p.apply(sys(VMAT_SYS_MUNLOCK, 40, -12, {kA, P}), &c);
  EXPECT_EQ(l.find(kA)->flags, kRW | VM_LOCKED | VM_LOCKONFAULT);
}

TEST(ProcessorLock, MlockallReflagsEveryVmaAndLocksLaterMmaps) {
  Processor p;
  Collect c;
  seed(p, c);
  p.apply(sys(VMAT_SYS_MLOCKALL, 10, 0, {vmatrace::abi::kMclCurrent | vmatrace::abi::kMclFuture}), &c);
  const auto& l = p.process(kPid)->layout;
  EXPECT_EQ(l.find(kA)->flags, kRW | VM_LOCKED);
  EXPECT_EQ(l.def_flags(), VM_LOCKED);
  EXPECT_EQ(count(c.applied.back().changes, VmaChangeKind::kFlags), 1u);
  EXPECT_TRUE(c.applied.back().change.result.empty());  // no "=> every VMA" on the line
  // An mmap whose kernel VMA vanished before exit: def_flags from the model.
  p.apply(sys(VMAT_SYS_MMAP, 20, static_cast<int64_t>(kA + 20 * P), {0, P, 3, 0x22, static_cast<uint64_t>(-1), 0}), &c);
  EXPECT_TRUE(l.find(kA + 20 * P)->flags & VM_LOCKED);
  p.apply(sys(VMAT_SYS_MUNLOCKALL, 30, 0, {}), &c);
  EXPECT_EQ(l.find(kA)->flags, kRW);
  EXPECT_EQ(l.def_flags(), 0u);
  EXPECT_EQ(count(c.applied.back().changes, VmaChangeKind::kFlags), 2u);
}

TEST(ProcessorLock, PkeyMprotectWithAKeyKeepsTheRangeApart) {
  Processor p;
  Collect c;
  seed(p, c);
  p.apply(sys(VMAT_SYS_PKEY_MPROTECT, 10, 0, {kA + P, P, 3, 1}), &c);
  const auto& l = p.process(kPid)->layout;
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.find(kA + P)->flags, kRW | VM_PKEY_BIT0);
  EXPECT_EQ(c.applied.back().cause, "pkey_mprotect");
}

TEST(ProcessorShm, AttachTakesTheKernelsVmaAndDetachRemovesIt) {
  Processor p;
  Collect c;
  seed(p, c);
  auto k = kinfo(kShm, kShm + 3 * P, kShmRW, VMAT_VMA_VALID | VMAT_VMA_FILE | VMAT_VMA_DELETED);
  k.pgoff = 0;
  k.ino = 32768;
  k.dev = 1;
  p.apply(sys(VMAT_SYS_SHMAT, 10, static_cast<int64_t>(kShm), {5, 0, 0}, k, {}, "/SYSV00000000"), &c);
  const auto& l = p.process(kPid)->layout;
  ASSERT_NE(l.find(kShm), nullptr);
  EXPECT_NE(maps(p).find("rw-s 00000000 00:01 32768                      /SYSV00000000 (deleted)"), std::string::npos)
      << maps(p);
  ASSERT_EQ(c.applied.back().changes.size(), 1u);
  EXPECT_EQ(c.applied.back().changes[0].kind, VmaChangeKind::kNew);
  ASSERT_EQ(c.applied.back().change.result.size(), 1u);
  EXPECT_EQ(c.applied.back().change.result[0].end, kShm + 3 * P);
  // A second attach right after it, same segment: a VMA of its own.
  k.start = kShm + 3 * P;
  k.end = kShm + 6 * P;
  p.apply(sys(VMAT_SYS_SHMAT, 20, static_cast<int64_t>(kShm + 3 * P), {5, kShm + 3 * P, 0}, k, {}, "/SYSV00000000"),
          &c);
  EXPECT_EQ(l.size(), 3u);
  // shmdt(first): only it goes (no size in the arguments: the model finds it).
  p.apply(sys(VMAT_SYS_SHMDT, 30, 0, {kShm}), &c);
  EXPECT_EQ(l.find(kShm), nullptr);
  ASSERT_NE(l.find(kShm + 3 * P), nullptr);
  ASSERT_EQ(c.applied.back().changes.size(), 1u);
  EXPECT_EQ(c.applied.back().changes[0].kind, VmaChangeKind::kRemove);
  // Without the kernel's VMA (it vanished before exit) an attach cannot be sized: nothing applied.
  p.apply(sys(VMAT_SYS_SHMAT, 40, static_cast<int64_t>(kShm), {5, 0, 0}), &c);
  EXPECT_EQ(l.find(kShm), nullptr);
}

TEST(ProcessorShm, DetachInTheKernelViewClearsTheRangeTheHookDoesNotReport) {
  // maple_tree:ma_write on 6.18 reports no clearing of an unmapped range:
  // shmdt's ranges come from the model, as munmap's come from its arguments.
  Processor p;
  Collect c;
  p.apply(decode(encode_note(make_header(VMAT_REC_NOTE, 1, 0, 0, "vmatrace"), {"attach.vma", "raw_tracepoint"})), &c);
  seed(p, c);
  auto k = kinfo(kShm, kShm + 2 * P, kShmRW, VMAT_VMA_VALID | VMAT_VMA_FILE | VMAT_VMA_DELETED);
  k.pgoff = 0;
  k.ino = 9;
  p.apply(sys(VMAT_SYS_SHMAT, 10, static_cast<int64_t>(kShm), {5, 0, 0}, k, {}, "/SYSV0000abcd"), &c);
  p.apply(sys(VMAT_SYS_SHMDT, 20, 0, {kShm}), &c);
  ASSERT_EQ(c.applied.back().changes.size(), 1u);
  EXPECT_EQ(c.applied.back().changes[0].kind, VmaChangeKind::kRemove);
  EXPECT_EQ(c.applied.back().changes[0].source, VmaChangeSource::kMapleTree);
  EXPECT_EQ(p.stats().kernel_disagreements, 0u);
}

TEST(DecodeLockShm, NamesAndPrintedArguments) {
  EXPECT_STREQ(syscall_name(VMAT_SYS_MLOCK2), "mlock2");
  EXPECT_STREQ(syscall_name(VMAT_SYS_PKEY_MPROTECT), "pkey_mprotect");
  EXPECT_STREQ(syscall_name(VMAT_SYS_SHMDT), "shmdt");
  EXPECT_EQ(mlock2_flag_names(1), "MLOCK_ONFAULT");
  EXPECT_EQ(mlockall_flag_names(7), "MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT");
  EXPECT_EQ(shmat_flag_names(010000 | 040000), "SHM_RDONLY|SHM_REMAP");
  EXPECT_EQ(shmat_flag_names(0), "0");

  Processor p;
  MemStream text, json;
  PrinterOptions to, jo;
  jo.format = OutputFormat::kJson;
  Printer pt(text.file(), to), pj(json.file(), jo);
  struct Both : RecordSink {
    Printer &a, &b;
    Both(Printer& x, Printer& y) : a(x), b(y) {}
    void on_record(const DecodedRecord& r, const Applied& ap, const ProcessState* s) override {
      a.on_record(r, ap, s);
      b.on_record(r, ap, s);
    }
  } both(pt, pj);
  Collect c;
  seed(p, c);
  p.apply(sys(VMAT_SYS_MLOCKALL, 10, 0, {vmatrace::abi::kMclCurrent}), &both);
  p.apply(sys(VMAT_SYS_MLOCK2, 11, 0, {kA, 2 * P, 1}), &both);
  p.apply(sys(VMAT_SYS_PKEY_MPROTECT, 12, 0, {kA, P, 1, static_cast<uint64_t>(-1)}), &both);
  p.apply(sys(VMAT_SYS_SHMAT, 13, -22, {7, 0x1000, 010000}), &both);
  p.apply(sys(VMAT_SYS_SHMDT, 14, -22, {0x1000}), &both);
  p.apply(sys(VMAT_SYS_MUNLOCKALL, 15, 0, {}), &both);
  pt.flush();
  pj.flush();
  const std::string t = text.str(), j = json.str();
  EXPECT_NE(t.find(" mlockall(MCL_CURRENT) = 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("[+VM_LOCKED]"), std::string::npos) << t;  // the flag change, invisible in perms
  EXPECT_NE(t.find(" mlock2(0x7f0000010000, 8192 [8.0 KiB], MLOCK_ONFAULT) = 0"), std::string::npos) << t;
  EXPECT_NE(t.find(" pkey_mprotect(0x7f0000010000, 4096 [4.0 KiB], PROT_READ, -1) = 0"), std::string::npos) << t;
  EXPECT_NE(t.find(" shmat(7, 0x1000, SHM_RDONLY) = -1 EINVAL"), std::string::npos) << t;
  EXPECT_NE(t.find(" shmdt(0x1000) = -1 EINVAL"), std::string::npos) << t;
  EXPECT_NE(t.find(" munlockall() = 0"), std::string::npos) << t;
  EXPECT_NE(j.find("\"event\":\"mlockall\",\"flags\":\"MCL_CURRENT\",\"ret\":0"), std::string::npos) << j;
  EXPECT_NE(j.find("\"flags_set\":\"VM_LOCKED\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"event\":\"mlock2\",\"addr\":\"0x7f0000010000\",\"len\":8192,\"flags\":\"MLOCK_ONFAULT\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"event\":\"pkey_mprotect\",\"addr\":\"0x7f0000010000\",\"len\":4096,\"prot\":\"PROT_READ\","
                   "\"pkey\":-1"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"event\":\"shmat\",\"shmid\":7,\"addr\":\"0x1000\",\"flags\":\"SHM_RDONLY\",\"error\":\"EINVAL\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"event\":\"munlockall\",\"ret\":0"), std::string::npos) << j;
}

TEST(MallocLockShm, TheNewSyscallsAreNeverGrowth) {
  // Malloc attribution joins a user stack to the syscall before it; none of
  // these grows memory (the BPF side sends no stack for them either).
  Processor p;
  Collect c;
  seed(p, c);
  MallocTracker t(/*live=*/false);
  vmat_user_stack_event u{};
  u.hdr = make_header(VMAT_EV_USER_STACK, 0, kPid, kPid, "t");
  u.hdr.size = sizeof(u);
  for (uint32_t s : {VMAT_SYS_MLOCK, VMAT_SYS_MLOCKALL, VMAT_SYS_PKEY_MPROTECT, VMAT_SYS_SHMAT}) {
    auto k = kinfo(kShm, kShm + 2 * P, kShmRW, VMAT_VMA_VALID | VMAT_VMA_FILE | VMAT_VMA_DELETED);
    auto r = sys(s, 100 + s, s == VMAT_SYS_SHMAT ? static_cast<int64_t>(kShm) : 0,
                 {s == VMAT_SYS_MLOCKALL ? 1 : kA, 4 * P, 3, static_cast<uint64_t>(-1)}, k, {}, "/SYSV00000001");
    t.before_apply(r, p);
    p.apply(r, &c);
    u.hdr.ts = r.hdr.ts + 1;
    u.enter_ts = r.sys.enter_ts;
    u.sys = s;
    std::vector<std::byte> b(sizeof(u));
    std::memcpy(b.data(), &u, sizeof(u));
    auto ur = decode(b);
    t.before_apply(ur, p);
    p.apply(ur, &c);
    EXPECT_FALSE(t.after_apply(ur, p)) << syscall_name(s);
  }
  // The control: an anonymous read-write mmap with its stack is growth.
  auto m = sys(VMAT_SYS_MMAP, 500, static_cast<int64_t>(kA + 50 * P), {0, 4 * P, 3, 0x22, static_cast<uint64_t>(-1), 0},
               kinfo(kA + 50 * P, kA + 54 * P, kRW));
  t.before_apply(m, p);
  p.apply(m, &c);
  u.hdr.ts = 501;
  u.enter_ts = m.sys.enter_ts;
  u.sys = VMAT_SYS_MMAP;
  std::vector<std::byte> b(sizeof(u));
  std::memcpy(b.data(), &u, sizeof(u));
  auto ur = decode(b);
  t.before_apply(ur, p);
  p.apply(ur, &c);
  EXPECT_TRUE(t.after_apply(ur, p));
}
