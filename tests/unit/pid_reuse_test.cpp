// A pid reused within one stream: the Processor must give the second
// process its own state (its parent's layout at fork), never the first
// holder's, whether or not the first holder's exit record arrived.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "core/decode.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/vm_flags.h"

using namespace vmatrace;

namespace {

constexpr uint64_t kAnonRw = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT;

// Applies one fixed-size record (decoded views point into the bytes, so
// they live until the record is applied).
template <typename T>
void apply_record(Processor& p, const T& v) {
  std::vector<std::byte> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  auto size = static_cast<uint32_t>(b.size());
  std::memcpy(b.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  std::string err;
  auto d = decode_record(b, &err);
  if (!d) throw std::runtime_error("test record does not decode: " + err);
  p.apply(*d, nullptr);
}

Vma anon(uint64_t start, uint64_t end) {
  Vma v;
  v.start = start;
  v.end = end;
  v.flags = kAnonRw;
  v.pgoff = start >> 12;
  return v;
}

void seed(Processor& p, uint32_t pid, uint64_t ts, std::vector<Vma> vmas) {
  LayoutRecord l;
  l.reason = LayoutReason::kAttach;
  l.vmas = std::move(vmas);
  auto b = encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, "parent"), l);
  std::string err;
  auto d = decode_record(b, &err);
  ASSERT_TRUE(d) << err;
  p.apply(*d, nullptr);
}

void fork_child(Processor& p, uint32_t parent, uint32_t child, uint64_t ts) {
  vmat_fork_event f{};
  f.hdr = make_header(VMAT_EV_FORK, ts, parent, parent, "parent");
  f.child_pid = child;
  f.child_tid = child;
  f.flags = VMAT_FORK_TRACED;
  apply_record(p, f);
}

void mmap_anon(Processor& p, uint32_t pid, uint64_t ts, uint64_t start, uint64_t end) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, "child");
  e.sys = VMAT_SYS_MMAP;
  e.ret = static_cast<int64_t>(start);
  e.args[1] = end - start;
  e.args[2] = 3;     // PROT_READ|PROT_WRITE
  e.args[3] = 0x22;  // MAP_PRIVATE|MAP_ANONYMOUS
  e.args[4] = static_cast<uint64_t>(-1);
  e.vma[0].start = start;
  e.vma[0].end = end;
  e.vma[0].flags = kAnonRw;
  e.vma[0].pgoff = start >> 12;
  e.vma[0].state = VMAT_VMA_VALID;
  apply_record(p, e);
}

void exit_group(Processor& p, uint32_t pid, uint64_t ts) {
  vmat_exit_event x{};
  x.hdr = make_header(VMAT_EV_EXIT, ts, pid, pid, "child");
  x.flags = VMAT_EXIT_GROUP;
  apply_record(p, x);
}

}  // namespace

TEST(ProcessorPidReuse, SecondHolderStartsFromItsParentsLayout) {
  Processor p;
  seed(p, 10, 100, {anon(0x10000, 0x20000)});
  fork_child(p, 10, 11, 200);
  mmap_anon(p, 11, 210, 0x50000, 0x52000);  // only the first holder maps this
  exit_group(p, 11, 220);
  ASSERT_EQ(p.process(11), nullptr);
  fork_child(p, 10, 11, 300);
  mmap_anon(p, 11, 310, 0x70000, 0x71000);
  const ProcessState* second = p.process(11);
  ASSERT_NE(second, nullptr);
  // The parent's VMA and its own mmap; nothing at 0x50000.
  auto vmas = second->layout.vmas();
  ASSERT_EQ(vmas.size(), 2u) << second->layout.proc_maps();
  EXPECT_EQ(vmas[0].start, 0x10000u);
  EXPECT_EQ(vmas[0].end, 0x20000u);
  EXPECT_EQ(vmas[1].start, 0x70000u);
  EXPECT_EQ(vmas[1].end, 0x71000u);
  EXPECT_EQ(second->layout.find(0x50000), nullptr);
  EXPECT_FALSE(second->exited);
  EXPECT_EQ(second->events, 1u);  // its own mmap; the fork is the parent's record
  ASSERT_EQ(p.ended().size(), 1u);
  EXPECT_EQ(p.ended()[0].pid, 11u);
}

// The first holder's exit record was lost (ring buffer full): the fork that
// hands its pid to a new process still replaces the stale state.
TEST(ProcessorPidReuse, ForkReplacesStateWhoseExitWasLost) {
  Processor p;
  seed(p, 10, 100, {anon(0x10000, 0x20000)});
  fork_child(p, 10, 11, 200);
  mmap_anon(p, 11, 210, 0x50000, 0x52000);
  fork_child(p, 10, 11, 300);  // no exit record in between
  const ProcessState* second = p.process(11);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->layout.proc_maps(), p.process(10)->layout.proc_maps());
  EXPECT_EQ(second->events, 0u);
}
