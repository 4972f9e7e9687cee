// VMAT_EV_SYSCALL_STORES: a syscall record that carries the VMA-tree stores
// its syscall made (bpf/vma.bpf.c keeps them with the in-flight syscall).
// It decodes as the syscall with its stores, and the Processor folds them
// exactly as it folds the same stores sent as records of their own.
#include <gtest/gtest.h>

#include <cstring>

#include "core/processor.h"
#include "core/records.h"
#include "output/record_dump.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

constexpr uint32_t kPid = 10;

vmat_vma_store store_of(uint64_t key, uint64_t start, uint64_t end) {
  vmat_vma_store s{};
  s.index = start;
  s.last = end - 1;
  s.vma_key = key;
  s.vma = key ? kinfo(start, end) : vmat_vma_info{};
  return s;
}

// The record as the BPF side writes it: the event, the stores, the path.
std::vector<std::byte> carrying(const vmat_syscall_event& sys, const std::vector<vmat_vma_store>& stores,
                                std::string_view path = {}, uint32_t source = VMAT_VMAK_MAPLE_TREE) {
  vmat_syscall_stores_event x{};
  x.sys = sys;
  x.sys.hdr.type = VMAT_EV_SYSCALL_STORES;
  x.sys.path_len = static_cast<uint32_t>(path.size());
  x.nstores = static_cast<uint32_t>(stores.size());
  x.source = source;
  std::vector<std::byte> b(sizeof(x) + stores.size() * sizeof(vmat_vma_store) + path.size());
  std::memcpy(b.data(), &x, sizeof(x));
  if (!stores.empty()) std::memcpy(b.data() + sizeof(x), stores.data(), stores.size() * sizeof(vmat_vma_store));
  if (!path.empty()) std::memcpy(b.data() + b.size() - path.size(), path.data(), path.size());
  const auto size = static_cast<uint32_t>(b.size());
  std::memcpy(b.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  return b;
}

vmat_syscall_event mmap_at(uint64_t enter, uint64_t exit, uint64_t addr, uint64_t len, vmat_vma_info k = {}) {
  vmat_syscall_event e = mmap_event(kPid, exit, addr, len, k);
  e.enter_ts = enter;
  return e;
}

struct Collect : RecordSink {
  std::vector<VmaChange> changes;
  void on_record(const DecodedRecord&, const Applied& a, const ProcessState*) override {
    changes.insert(changes.end(), a.changes.begin(), a.changes.end());
  }
};

void start(Processor& p, Collect* c) {
  p.apply(decode(encode_note(make_header(VMAT_REC_NOTE, 1, 0, 0, "vmatrace"), {"attach.vma", "raw_tracepoint"})), c);
  p.apply(decode(layout_rec(kPid, 2, {anon(0x10000, 0x13000)})), c);
}

std::string decode_error(std::vector<std::byte> b) {
  std::string err;
  EXPECT_FALSE(decode_record(keep(std::move(b)), &err));
  return err;
}

}  // namespace

TEST(SyscallStoresRecord, DecodesAsTheSyscallWithItsStoresAndPath) {
  auto sys = mmap_at(100, 110, 0x13000, 0x1000, kinfo(0x10000, 0x14000, kRW, VMAT_VMA_VALID | VMAT_VMA_FILE));
  const auto d = decode(carrying(sys, {store_of(0xabc, 0x10000, 0x14000), store_of(0, 0x20000, 0x21000)},
                                 std::string_view("/lib/x.so\0", 10), VMAT_VMAK_KPROBE));
  EXPECT_EQ(d.type, static_cast<uint32_t>(VMAT_EV_SYSCALL));
  EXPECT_EQ(d.hdr.type, static_cast<uint32_t>(VMAT_EV_SYSCALL_STORES));
  EXPECT_EQ(d.sys.sys, static_cast<uint32_t>(VMAT_SYS_MMAP));
  EXPECT_EQ(d.sys.enter_ts, 100u);
  EXPECT_EQ(d.sys.vma[0].end, 0x14000u);
  EXPECT_EQ(d.path, "/lib/x.so");
  ASSERT_EQ(d.stores.size(), 2u);
  EXPECT_EQ(d.stores.source(), static_cast<uint32_t>(VMAT_VMAK_KPROBE));
  EXPECT_EQ(d.stores[0].index, 0x10000u);
  EXPECT_EQ(d.stores[0].last, 0x13fffu);
  EXPECT_EQ(d.stores[0].vma_key, 0xabcu);
  EXPECT_EQ(d.stores[0].vma.end, 0x14000u);
  EXPECT_EQ(d.stores[1].vma_key, 0u);
  EXPECT_EQ(d.stores[1].index, 0x20000u);
  const std::string dump = dump_record(d);
  EXPECT_NE(dump.find("store kprobe [0x10000, 0x13fff] <- key=0000000000000abc"), std::string::npos) << dump;
  EXPECT_NE(dump.find("store kprobe [0x20000, 0x20fff] cleared"), std::string::npos) << dump;
}

// Recordings written before the type existed hold plain syscall records:
// they decode as before, carrying nothing.
TEST(SyscallStoresRecord, APlainSyscallRecordCarriesNoStores) {
  const auto d = decode(bytes_of(mmap_at(100, 110, 0x13000, 0x1000)));
  EXPECT_EQ(d.hdr.type, static_cast<uint32_t>(VMAT_EV_SYSCALL));
  EXPECT_TRUE(d.stores.empty());
}

TEST(SyscallStoresRecord, MalformedRecordsAreRefusedWithAReason) {
  const auto sys = mmap_at(100, 110, 0x13000, 0x1000);
  auto too_many = carrying(sys, {store_of(1, 0x10000, 0x11000)});
  std::memset(too_many.data() + offsetof(vmat_syscall_stores_event, nstores), 0xff, 4);
  EXPECT_EQ(decode_error(too_many), "syscall record shorter than its store count");

  auto backwards = store_of(1, 0x10000, 0x11000);
  backwards.last = 0x1000;
  EXPECT_EQ(decode_error(carrying(sys, {backwards})), "VMA store with its last byte before its first");

  auto long_path = carrying(sys, {store_of(1, 0x10000, 0x11000)}, "ab");
  const uint32_t len = 3;
  std::memcpy(long_path.data() + offsetof(vmat_syscall_event, path_len), &len, sizeof(len));
  EXPECT_EQ(decode_error(long_path), "trailing string runs past the record");

  auto bad_sys = sys;
  bad_sys.sys = VMAT_SYS_MAX;
  EXPECT_EQ(decode_error(carrying(bad_sys, {})), "unknown syscall id");

  auto shorter = carrying(sys, {});
  shorter.resize(sizeof(vmat_syscall_event));
  const auto size = static_cast<uint32_t>(shorter.size());
  std::memcpy(shorter.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  EXPECT_EQ(decode_error(shorter), "record shorter than its type");
}

TEST(SyscallStoresRecord, CarriedStoresFoldLikeSeparateOnes) {
  // vma_merge_new_range(): prev stored again over its range and the new page.
  Processor carried, apart;
  Collect cc, ca;
  start(carried, &cc);
  start(apart, &ca);
  carried.apply(decode(carrying(mmap_at(100, 110, 0x13000, 0x1000, kinfo(0x10000, 0x14000)),
                                {store_of(0xabc, 0x10000, 0x14000)})),
                &cc);
  apart.apply(decode(vma_store_rec(105, kPid, kPid, 0xabc, 0x10000, 0x14000)), &ca);
  apart.apply(decode(bytes_of(mmap_at(100, 110, 0x13000, 0x1000, kinfo(0x10000, 0x14000)))), &ca);
  ASSERT_EQ(cc.changes.size(), 1u);
  ASSERT_EQ(ca.changes.size(), 1u);
  EXPECT_EQ(cc.changes[0].kind, VmaChangeKind::kMerge);
  EXPECT_EQ(cc.changes[0].kind, ca.changes[0].kind);
  EXPECT_EQ(cc.changes[0].source, VmaChangeSource::kMapleTree);
  EXPECT_EQ(carried.stats().kernel_stores, 1u);
  EXPECT_EQ(carried.stats().kernel_disagreements, 0u);
  EXPECT_EQ(carried.process(kPid)->layout.vmas().size(), apart.process(kPid)->layout.vmas().size());
}

// More stores than the record can carry: the rest came as records of their
// own before it, and were made after the carried ones. The last store over
// an address wins: here a later separate store keeps the page apart from
// the VMA a carried store merged it into (the record has no VMA: a sibling
// held mmap_lock at the exit, so the stores alone say what the kernel built).
TEST(SyscallStoresRecord, StoresPastTheBoundComeAfterTheCarriedOnes) {
  Processor p;
  start(p, nullptr);
  p.apply(decode(vma_store_rec(106, kPid, kPid, 0xdef, 0x13000, 0x14000)), nullptr);
  p.apply(decode(carrying(mmap_at(100, 110, 0x13000, 0x1000), {store_of(0xabc, 0x10000, 0x14000)})), nullptr);
  const auto& l = p.process(kPid)->layout;
  ASSERT_NE(l.find(0x13000), nullptr);
  EXPECT_EQ(l.find(0x13000)->start, 0x13000u) << "the later, separate store wins";
  EXPECT_EQ(l.find(0x10000)->end, 0x13000u);
  EXPECT_EQ(p.stats().kernel_stores, 2u);
}

TEST(SyscallStoresRecord, InferOnlyIgnoresCarriedStores) {
  Processor p;
  p.set_infer_only(true);
  Collect c;
  start(p, &c);
  p.apply(decode(carrying(mmap_at(100, 110, 0x13000, 0x1000, kinfo(0x10000, 0x14000)),
                          {store_of(0xabc, 0x10000, 0x14000)})),
          &c);
  ASSERT_EQ(c.changes.size(), 1u);
  EXPECT_EQ(c.changes[0].source, VmaChangeSource::kInference);
  EXPECT_EQ(p.stats().kernel_stores, 0u);
}
