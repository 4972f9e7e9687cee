#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/layout.h"
#include "core/proc_maps.h"
#include "core/vm_flags.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;

// ---- formatting (show_map_vma) ------------------------------------------

TEST(ProcMapsFormat, AnonymousWithoutNameEndsWithSpace) {
  Vma v;
  v.start = 0x7fe5f6376000;
  v.end = 0x7fe5f6398000;
  v.flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  v.pgoff = v.start / P;  // not printed for anonymous memory
  EXPECT_EQ(format_maps_line(v, ""), "7fe5f6376000-7fe5f6398000 rw-p 00000000 00:00 0 \n");
}

TEST(ProcMapsFormat, FilePadsNameToColumn73) {
  Vma v;
  v.start = 0x55adbdc4e000;
  v.end = 0x55adbdc53000;
  v.flags = VM_READ | VM_EXEC;
  v.pgoff = 2;
  v.dev = kernel_mkdev(0xfe, 0);
  v.ino = 247134;
  v.path = "/usr/bin/cat";
  const std::string line = format_maps_line(v, "/usr/bin/cat");
  EXPECT_EQ(line, "55adbdc4e000-55adbdc53000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n");
  EXPECT_EQ(line.find('/'), 73u);
}

TEST(ProcMapsFormat, ShortAddressesAndVsyscall) {
  Vma v;
  v.start = 0x400000;
  v.end = 0x401000;
  v.flags = VM_READ | VM_MAYSHARE;
  EXPECT_EQ(format_maps_line(v, "[x]"), "00400000-00401000 r--s 00000000 00:00 0" + std::string(34, ' ') + "[x]\n");
  v.start = 0xffffffffff600000;
  v.end = 0xffffffffff601000;
  v.flags = VM_EXEC;
  EXPECT_EQ(format_maps_line(v, "[vsyscall]"),
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n");
}

TEST(ProcMapsFormat, LongHeaderGetsOneSeparator) {
  Vma v;
  v.start = 0x7fe5f6376000;
  v.end = 0x7fe5f6398000;
  v.flags = VM_READ;
  v.pgoff = 0x123456789;
  v.dev = kernel_mkdev(0x103, 0x12345);
  v.ino = 12345678901234567890ULL;
  v.path = "/x";
  EXPECT_EQ(format_maps_line(v, "/x"),
            "7fe5f6376000-7fe5f6398000 r--p 123456789000 103:12345 12345678901234567890  /x\n");
}

// ---- parsing --------------------------------------------------------------

constexpr const char* kSampleMaps =
    "55adbdc4c000-55adbdc4e000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
    "55addd0b7000-55addd0d8000 rw-p 00000000 00:00 0                          [heap]\n"
    "7fe5f6376000-7fe5f6398000 rw-p 00000000 00:00 0 \n"
    "7fe5f63f1000-7fe5f63f2000 r--s 00000000 00:01 1234                       /memfd:my buf (deleted)\n"
    "7fe5f63f2000-7fe5f63f3000 rw-p 00000000 00:00 0                          [anon:my region]\n"
    "7fe5f63f3000-7fe5f63f4000 r--p 00001000 fe:00 99                         /tmp/new\\012line\n"
    "7fe5f65e8000-7fe5f65ec000 r--p 00000000 00:00 0                          [vvar]\n"
    "7fe5f65ee000-7fe5f65f0000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffcb178f000-7ffcb17b0000 rw-p 00000000 00:00 0                          [stack]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(ProcMapsParse, FieldsAndNames) {
  std::vector<std::string> names;
  auto v = parse_proc_maps(kSampleMaps, &names);
  ASSERT_EQ(v.size(), 10u);
  EXPECT_EQ(v[0].path, "/usr/bin/cat");
  EXPECT_EQ(v[0].dev, kernel_mkdev(0xfe, 0));
  EXPECT_EQ(v[0].ino, 247134u);
  EXPECT_EQ(v[0].pgoff, 0u);
  EXPECT_TRUE(v[1].is_anonymous());  // [heap] is derived, not stored
  EXPECT_EQ(names[1], "[heap]");
  EXPECT_EQ(v[2].pgoff, v[2].start / P);
  EXPECT_EQ(v[3].path, "/memfd:my buf");
  EXPECT_TRUE(v[3].deleted);
  EXPECT_TRUE(v[3].is_shared());
  EXPECT_EQ(v[4].anon_name, "my region");
  EXPECT_EQ(v[5].path, "/tmp/new\nline");
  EXPECT_EQ(v[5].pgoff, 1u);
  EXPECT_EQ(v[6].special, "[vvar]");
  EXPECT_TRUE(v[6].flags & VM_PFNMAP);
  EXPECT_EQ(v[7].special, "[vdso]");
  EXPECT_TRUE(v[8].flags & VM_GROWSDOWN);
  EXPECT_EQ(v[9].special, "[vsyscall]");
}

TEST(ProcMapsParse, SeedAndPrintRoundTrip) {
  std::vector<std::string> names;
  Layout l;
  l.seed(parse_proc_maps(kSampleMaps, &names));
  l.set_brk(0x55addd0b7000, 0x55addd0d8000);
  l.set_start_stack(0x7ffcb17aef00);
  EXPECT_EQ(format_proc_maps(l), kSampleMaps);
}

TEST(ProcMapsParse, MalformedLinesThrowWithLineNumber) {
  try {
    parse_proc_maps("00400000-00401000 r--p 00000000 00:00 0\nbogus\n");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_proc_maps("00401000-00400000 r--p 00000000 00:00 0\n"), std::runtime_error);
  EXPECT_THROW(parse_proc_maps("00400000-00401000 rw 00000000 00:00 0\n"), std::runtime_error);
  EXPECT_FALSE(parse_maps_line("Size: 4 kB").has_value());
  auto one = parse_maps_line("00400000-00401000 r--p 00000000 00:00 0   [vsyscall]\n");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->special, "[vsyscall]");
}

TEST(ProcMapsParse, SmapsGivesExactFlags) {
  const char* text =
      "7ffcb178f000-7ffcb17b0000 rw-p 00000000 00:00 0                          [stack]\n"
      "Size:                132 kB\n"
      "KernelPageSize:        4 kB\n"
      "VmFlags: rd wr mr mw me gd ac \n"
      "7fe5f63f1000-7fe5f63f2000 r--s 00000000 fe:00 1234                       /x\n"
      "Size:                  4 kB\n"
      "VmFlags: rd mr me ms \n";
  auto v = parse_proc_smaps(text);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].flags, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN | VM_ACCOUNT);
  EXPECT_EQ(v[1].flags, VM_READ | VM_MAYREAD | VM_MAYEXEC | VM_MAYSHARE);
  EXPECT_THROW(parse_proc_smaps("Size: 4 kB\n"), std::runtime_error);
}

TEST(ProcStat, Fields) {
  // comm with spaces and a ')' inside.
  std::string stat = "1234 (a) b) S";
  for (int f = 4; f <= 52; f++) stat += " " + std::to_string(f * 10);
  stat += "\n";
  auto st = parse_proc_stat(stat);
  EXPECT_EQ(st.start_stack, 280u);
  EXPECT_EQ(st.start_data, 450u);
  EXPECT_EQ(st.end_data, 460u);
  EXPECT_EQ(st.start_brk, 470u);
}

// ---- the running kernel -------------------------------------------------------

// The whole file read with raw syscalls into memory allocated beforehand, so
// that reading does not itself change the layout (malloc, or ASan's
// allocator, may mmap): the text is one consistent view of the process.
std::string read_raw(const char* path) {
  std::string buf(size_t{32} << 20, '\0');
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("open ") + path + ": " + std::strerror(errno));
  size_t n = 0;
  for (;;) {
    const ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
    if (n == buf.size()) break;
  }
  ::close(fd);
  buf.resize(n);
  return buf;
}

Layout layout_with_kernel_names(const std::vector<Vma>& vmas, const std::vector<std::string>& names) {
  const ProcStat st = parse_proc_stat(read_text_file("/proc/self/stat"));
  uint64_t brk = st.start_brk;
  for (size_t i = 0; i < vmas.size(); i++) {
    if (names[i] == "[heap]") brk = vmas[i].end;
  }
  Layout l;
  l.set_brk(st.start_brk, brk);
  l.set_start_stack(st.start_stack);
  l.seed(vmas);
  return l;
}

TEST(ProcSelf, MapsRoundTripByteForByte) {
  const std::string maps = read_raw("/proc/self/maps");
  std::vector<std::string> names;
  const auto vmas = parse_proc_maps(maps, &names);
  ASSERT_GT(vmas.size(), 5u);
  EXPECT_EQ(format_proc_maps(layout_with_kernel_names(vmas, names)), maps);
}

TEST(ProcSelf, SmapsRoundTripHeadersAndVmFlags) {
  const std::string smaps = read_raw("/proc/self/smaps");
  std::vector<std::string> names;
  const auto vmas = parse_proc_smaps(smaps, &names);
  ASSERT_GT(vmas.size(), 5u);
  // smaps' header lines are exactly the maps lines of the same moment.
  std::string headers, vmflags;
  for (size_t pos = 0; pos < smaps.size();) {
    size_t nl = smaps.find('\n', pos);
    std::string line = smaps.substr(pos, nl - pos + 1);
    pos = nl + 1;
    if (parse_maps_line(line)) headers += line;
    if (line.starts_with("VmFlags:")) vmflags += line;
  }
  EXPECT_EQ(format_proc_maps(layout_with_kernel_names(vmas, names)), headers);
  std::string mine;
  for (const auto& v : vmas) mine += "VmFlags: " + format_smaps_vmflags(v.flags) + "\n";
  EXPECT_EQ(mine, vmflags);
}

TEST(ProcSelf, ReadProcLayout) {
  Layout l = read_proc_layout(getpid());
  EXPECT_GT(l.size(), 5u);
  const Vma* stack = nullptr;
  for (const auto& v : l.vmas()) {
    if (maps_name(l, v) == "[stack]") stack = l.find(v.start);
  }
  ASSERT_NE(stack, nullptr);
  EXPECT_TRUE(stack->flags & VM_GROWSDOWN);
  EXPECT_NE(l.start_brk(), 0u);
}

TEST(ProcSelf, ReadProcLayoutErrorsCarryContext) {
  try {
    read_proc_layout(999999999);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("999999999"), std::string::npos) << e.what();
  }
}

// Replay real syscalls on the model and compare with the kernel's smaps
// (start, end and exact vm_flags). Everything happens inside a PROT_NONE
// reservation of our own, which the model is seeded with, so other
// mappings of the process (malloc, ASan) never interfere.
class LiveKernel : public ::testing::Test {
 protected:
  static constexpr size_t kPages = 64;
  static constexpr size_t kPad = 64;
  void SetUp() override {
    total_ = (kPages + 2 * kPad) * P;
    void* p = ::mmap(nullptr, total_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    reservation_ = reinterpret_cast<uint64_t>(p);
    base_ = reservation_ + kPad * P;
    for (const auto& v : kernel_view()) model_vmas_.push_back(v);
    model_.seed(model_vmas_);
  }
  void TearDown() override { ::munmap(reinterpret_cast<void*>(reservation_), total_); }
  uint64_t a(size_t page) const { return base_ + page * P; }
  void* ptr(size_t page) const { return reinterpret_cast<void*>(a(page)); }

  // The kernel's VMAs overlapping the reservation.
  std::vector<Vma> kernel_view() const {
    std::vector<Vma> out;
    for (const auto& v : parse_proc_smaps(read_raw("/proc/self/smaps"))) {
      if (v.end > reservation_ && v.start < reservation_ + total_) out.push_back(v);
    }
    return out;
  }

  void do_mmap(size_t page, size_t n, int prot, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    void* r = ::mmap(ptr(page), n * P, prot, flags | MAP_FIXED, -1, 0);
    ASSERT_EQ(r, ptr(page)) << std::strerror(errno);
    Vma v;
    v.start = a(page);
    v.end = a(page + n);
    v.flags = mmap_vm_flags({.prot = static_cast<uint64_t>(prot), .map_flags = static_cast<uint64_t>(flags)});
    model_.mmap(v);
  }

  void expect_same() {
    const auto kernel = kernel_view();
    const auto mine = model_.overlapping(reservation_, reservation_ + total_);
    ASSERT_EQ(mine.size(), kernel.size()) << format_proc_maps(model_);
    for (size_t i = 0; i < mine.size(); i++) {
      EXPECT_EQ(mine[i].start, kernel[i].start) << i;
      EXPECT_EQ(mine[i].end, kernel[i].end) << i;
      EXPECT_EQ(decode_vm_flags(mine[i].flags), decode_vm_flags(kernel[i].flags)) << i;
    }
  }
  size_t arena_vmas() const { return model_.overlapping(a(0), a(kPages)).size(); }

  uint64_t reservation_ = 0, base_ = 0, total_ = 0;
  std::vector<Vma> model_vmas_;
  Layout model_;
};

TEST_F(LiveKernel, MmapMergeMprotectMadviseMunmap) {
  do_mmap(0, 4, PROT_READ | PROT_WRITE);
  do_mmap(4, 4, PROT_READ | PROT_WRITE);  // merges left
  do_mmap(10, 2, PROT_READ | PROT_WRITE);
  do_mmap(8, 2, PROT_READ | PROT_WRITE);  // merges both sides
  expect_same();
  ASSERT_EQ(arena_vmas(), 2u);  // one rw VMA + the rest of the reservation

  ASSERT_EQ(::mprotect(ptr(2), 2 * P, PROT_READ), 0);
  model_.mprotect(a(2), 2 * P, abi::kProtRead);
  expect_same();
  ASSERT_EQ(::mprotect(ptr(2), 2 * P, PROT_READ | PROT_WRITE), 0);
  model_.mprotect(a(2), 2 * P, abi::kProtRead | abi::kProtWrite);
  expect_same();

  for (int adv : {MADV_DONTFORK, MADV_DONTDUMP, MADV_WIPEONFORK, MADV_RANDOM, MADV_SEQUENTIAL}) {
    ASSERT_EQ(::madvise(ptr(5), 3 * P, adv), 0);
    model_.madvise(a(5), 3 * P, adv);
    expect_same();
  }
  for (int adv : {MADV_DOFORK, MADV_DODUMP, MADV_KEEPONFORK, MADV_NORMAL}) {
    ASSERT_EQ(::madvise(ptr(5), 3 * P, adv), 0);
    model_.madvise(a(5), 3 * P, adv);
    expect_same();
  }
  ASSERT_EQ(arena_vmas(), 2u);  // one rw VMA + the rest of the reservation

  ASSERT_EQ(::munmap(ptr(3), 2 * P), 0);
  model_.munmap(a(3), 2 * P);
  expect_same();
  ASSERT_EQ(::mprotect(ptr(0), 12 * P, PROT_NONE), -1);  // hole at 3..4: ENOMEM after changing 0..2
  model_.mprotect(a(0), 12 * P, 0);
  expect_same();
}

TEST_F(LiveKernel, MremapShrinkGrowMove) {
  do_mmap(0, 4, PROT_READ | PROT_WRITE);
  do_mmap(8, 4, PROT_READ | PROT_WRITE);
  void* r = ::mremap(ptr(0), 4 * P, 2 * P, 0);
  ASSERT_EQ(r, ptr(0));
  model_.mremap(a(0), 4 * P, 2 * P, 0, a(0));
  expect_same();
  ASSERT_EQ(::munmap(ptr(4), 4 * P), 0);  // clear the reservation between A and B
  model_.munmap(a(4), 4 * P);
  expect_same();
  r = ::mremap(ptr(0), 2 * P, 8 * P, 0);  // grow in place up to B and merge with it
  ASSERT_EQ(r, ptr(0));
  model_.mremap(a(0), 2 * P, 8 * P, 0, a(0));
  expect_same();
  ASSERT_EQ(arena_vmas(), 2u);  // one rw VMA + the rest of the reservation
  r = ::mremap(ptr(0), 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, ptr(20));
  ASSERT_EQ(r, ptr(20));
  model_.mremap(a(0), 4 * P, 4 * P, abi::kMremapMayMove | abi::kMremapFixed, a(20));
  expect_same();
  ASSERT_EQ(::mprotect(ptr(6), P, PROT_READ), 0);
  model_.mprotect(a(6), P, abi::kProtRead);
  expect_same();
}

TEST_F(LiveKernel, MoveRebasesOnlyNeverFaultedAnonymous) {
  // copy_vma(): untouched A moved next to C merges (pgoff rebased); touched
  // B keeps its old pgoff and stays separate next to D.
  do_mmap(0, 2, PROT_READ | PROT_WRITE);
  do_mmap(12, 2, PROT_READ | PROT_WRITE);
  void* r = ::mremap(ptr(0), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, ptr(10));
  ASSERT_EQ(r, ptr(10));
  model_.mremap(a(0), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, a(10));
  expect_same();
  EXPECT_EQ(arena_vmas(), 3u);  // rw at 10..14, reservation pieces 0..10 and 14..

  do_mmap(30, 2, PROT_READ | PROT_WRITE);
  do_mmap(42, 2, PROT_READ | PROT_WRITE);
  static_cast<volatile char*>(ptr(30))[0] = 1;  // fault: anon_vma attached
  model_.fault(a(30));
  r = ::mremap(ptr(30), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, ptr(40));
  ASSERT_EQ(r, ptr(40));
  model_.mremap(a(30), 2 * P, 2 * P, abi::kMremapMayMove | abi::kMremapFixed, a(40));
  expect_same();
  EXPECT_EQ(model_.find(a(40))->end, a(42));  // B stays apart from D
}

}  // namespace
}  // namespace vmatrace
