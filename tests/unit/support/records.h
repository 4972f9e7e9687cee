#pragma once
// Shared record builders for the unit tests that feed the Processor and the
// reports: records as the BPF side and the frontend emit them, and the VMAs
// (at byte addresses) they carry. A test says only what differs.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.h"
#include "core/syscall_names.h"
#include "vmas.h"

namespace vmatrace::test::records {

inline Vma anon(uint64_t start, uint64_t end, uint64_t flags = kRW) {
  Vma v;
  v.start = start;
  v.end = end;
  v.flags = flags;
  v.pgoff = start >> 12;
  return v;
}

inline vmat_vma_info kinfo(uint64_t start, uint64_t end, uint64_t flags = kRW, uint32_t state = VMAT_VMA_VALID) {
  vmat_vma_info k{};
  k.start = start;
  k.end = end;
  k.flags = flags;
  k.pgoff = start >> 12;
  k.state = state;
  return k;
}

// A fixed-size record (and its variable tail) as bytes, its header's size set.
template <typename T>
std::vector<std::byte> bytes_of(const T& v, std::string_view tail = {}) {
  std::vector<std::byte> b(sizeof(T) + tail.size());
  std::memcpy(b.data(), &v, sizeof(T));
  // An empty tail has a null data(): memcpy from null is UB even for 0 bytes.
  if (!tail.empty()) std::memcpy(b.data() + sizeof(T), tail.data(), tail.size());
  auto size = static_cast<uint32_t>(b.size());
  std::memcpy(b.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  return b;
}

// A decoded record's views (comm, path) point into its bytes: keep every
// record's bytes for the whole test program.
inline const std::vector<std::byte>& keep(std::vector<std::byte> b) {
  static std::deque<std::vector<std::byte>> kept;
  kept.push_back(std::move(b));
  return kept.back();
}

// Decodes a record the test built to be valid; one that does not decode
// fails the test (by exception: there is no record to go on with).
inline DecodedRecord decode(const std::vector<std::byte>& b) {
  std::string err;
  auto d = decode_record(keep(b), &err);
  EXPECT_TRUE(d) << err;
  if (!d) throw std::runtime_error("test record does not decode: " + err);
  return *d;
}

inline std::vector<std::byte> layout_rec(uint32_t pid, uint64_t ts, std::vector<Vma> vmas,
                                         LayoutReason reason = LayoutReason::kAttach, std::string_view comm = "t") {
  LayoutRecord l;
  l.reason = reason;
  l.vmas = std::move(vmas);
  return encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, comm), l);
}

// A store into the VMA tree (maple_tree ma_write) as a record of its own:
// thread tid of process pid stored VMA vma_key over [start, end) at ts.
inline std::vector<std::byte> vma_store_rec(uint64_t ts, uint32_t pid, uint32_t tid, uint64_t key, uint64_t start,
                                            uint64_t end) {
  vmat_vma_kernel_event e{};
  e.hdr = make_header(VMAT_EV_VMA_KERNEL, ts, pid, tid, "t");
  e.hdr.size = sizeof(e);
  e.source = VMAT_VMAK_MAPLE_TREE;
  e.index = start;
  e.last = end - 1;
  e.vma_key = key;
  e.vma = kinfo(start, end);
  return bytes_of(e);
}

// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) returning addr.
inline vmat_syscall_event mmap_event(uint32_t pid, uint64_t ts, uint64_t addr, uint64_t len, vmat_vma_info kernel = {},
                                     std::string_view comm = "t") {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, comm);
  e.sys = VMAT_SYS_MMAP;
  e.ret = static_cast<int64_t>(addr);
  e.args[1] = len;
  e.args[2] = 3;     // PROT_READ|PROT_WRITE
  e.args[3] = 0x22;  // MAP_PRIVATE|MAP_ANONYMOUS
  e.args[4] = static_cast<uint64_t>(-1);
  e.vma[0] = kernel;
  return e;
}

}  // namespace vmatrace::test::records
