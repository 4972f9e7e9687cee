#pragma once
// Shared builders for the unit tests, in the way of the kernel's
// tools/testing/vma/shared.h: the flag sets every test speaks in, and VMAs
// drawn one character per page (namespace pages) for the layout-model tests,
// so that a test says only what differs.

#include <gtest/gtest.h>

#include <cstdint>

#include "core/layout.h"
#include "core/vm_flags.h"

namespace vmatrace::test {

inline constexpr uint64_t P = kPageSize;

inline constexpr uint64_t kMay = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
// mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
inline constexpr uint64_t kRW = VM_READ | VM_WRITE | kMay | VM_ACCOUNT;
inline constexpr uint64_t kRO = VM_READ | kMay;
inline constexpr uint64_t kNone = kMay;
inline constexpr uint64_t kShmRW = VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE | kMay;
inline constexpr uint64_t kStack = kRW | VM_GROWSDOWN;

// Page n of the drawings, the drawings' VMAs, and EXPECT_VMA on them.
namespace pages {

inline constexpr uint64_t kBase = 0x7f0000000000;
constexpr uint64_t pg(uint64_t n) { return kBase + n * P; }
constexpr uint64_t apg(uint64_t n) { return pg(n) / P; }  // anonymous pgoff of page n

inline Vma anon(uint64_t s, uint64_t e, uint64_t flags = kRW) {
  Vma v;
  v.start = pg(s);
  v.end = pg(e);
  v.flags = flags;
  v.pgoff = v.start / P;
  return v;
}

inline Vma file(uint64_t s, uint64_t e, uint64_t pgoff, uint64_t ino = 42, uint64_t flags = kRO) {
  Vma v = anon(s, e, flags);
  v.pgoff = pgoff;
  v.dev = (254u << 20) | 0;
  v.ino = ino;
  v.path = "/lib/libx.so";
  return v;
}

// A SysV segment's VMA as do_shmat() makes it: "/SYSV<key>", deleted, shared.
inline Vma shm(uint64_t s, uint64_t e, uint64_t ino = 7, uint64_t flags = kShmRW) {
  Vma v = anon(s, e, flags);
  v.pgoff = 0;
  v.dev = 1;  // the internal shm mount
  v.ino = ino;
  v.path = "/SYSV0000abcd";
  v.deleted = true;
  return v;
}

}  // namespace pages
}  // namespace vmatrace::test

// Start and end as pages of the drawing, pgoff and flags exactly.
#define EXPECT_VMA(vma, s, e, off, fl)                                                  \
  do {                                                                                  \
    const ::vmatrace::Vma* _v = (vma);                                                  \
    ASSERT_NE(_v, nullptr);                                                             \
    EXPECT_EQ(_v->start, ::vmatrace::test::pages::pg(s));                               \
    EXPECT_EQ(_v->end, ::vmatrace::test::pages::pg(e));                                 \
    EXPECT_EQ(_v->pgoff, (off));                                                        \
    EXPECT_EQ(::vmatrace::decode_vm_flags(_v->flags), ::vmatrace::decode_vm_flags(fl)); \
  } while (0)
