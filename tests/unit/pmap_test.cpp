// pmap kinds (core/pmap.h): each case one rule.

#include <gtest/gtest.h>

#include "core/layout.h"
#include "core/pmap.h"
#include "core/vm_flags.h"
#include "support/vmas.h"

namespace vmatrace {
namespace {

using namespace test;

Vma vma(uint64_t s, uint64_t e, uint64_t flags, const std::string& path = "") {
  Vma v;
  v.start = s * P;
  v.end = e * P;
  v.flags = flags | kMay;
  v.pgoff = path.empty() ? s : 0;
  v.path = path;
  if (!path.empty()) v.ino = 7;
  return v;
}

VmaKind kind(const Vma& v, const std::string& name = "", const Vma* prev = nullptr,
             const std::string& prog = "/bin/p") {
  return classify_vma(v, name.empty() ? v.path : name, prog, prev, prev ? prev->path : "");
}

TEST(Pmap, ProgramTextDataAndBss) {
  auto text = vma(16, 17, VM_READ | VM_EXEC, "/bin/p");
  auto data = vma(17, 18, VM_READ | VM_WRITE, "/bin/p");
  auto bss = vma(18, 19, VM_READ | VM_WRITE);
  EXPECT_EQ(kind(text), VmaKind::kProgramText);
  EXPECT_EQ(kind(data), VmaKind::kProgramData);
  EXPECT_EQ(kind(bss, "", &data), VmaKind::kProgramBss);
  EXPECT_EQ(kind(bss), VmaKind::kAnon);  // not next to the program
}

TEST(Pmap, LibraryCodeDataAndBss) {
  auto code = vma(100, 101, VM_READ | VM_EXEC, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  auto data = vma(101, 102, VM_READ | VM_WRITE, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  auto bss = vma(102, 103, VM_READ | VM_WRITE);
  EXPECT_EQ(kind(code), VmaKind::kLibCode);
  EXPECT_EQ(kind(data), VmaKind::kLibData);
  EXPECT_EQ(kind(bss, "", &data), VmaKind::kLibData);
  EXPECT_EQ(kind(vma(0, 1, VM_READ, "/usr/lib/libfoo.so")), VmaKind::kLibData);
  EXPECT_EQ(kind(vma(0, 1, VM_READ, "/usr/share/fonts/x.sob")), VmaKind::kFile);
}

TEST(Pmap, HeapStackSpecialShmAndFiles) {
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_WRITE), "[heap]"), VmaKind::kHeap);
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_WRITE | VM_GROWSDOWN), "[stack]"), VmaKind::kStack);
  auto vdso = vma(0, 1, VM_READ | VM_EXEC);
  vdso.special = "[vdso]";
  EXPECT_EQ(kind(vdso, "[vdso]"), VmaKind::kSpecial);
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE, "/dev/zero")), VmaKind::kShm);
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_SHARED | VM_MAYSHARE, "/memfd:x")), VmaKind::kShm);
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_SHARED | VM_MAYSHARE, "/tmp/data")), VmaKind::kFile);
  EXPECT_EQ(kind(vma(0, 1, VM_READ | VM_WRITE)), VmaKind::kAnon);
}

TEST(Pmap, TextTotalsAddUp) {
  Layout l;
  l.seed({vma(16, 17, VM_READ | VM_EXEC, "/bin/p"), vma(17, 19, VM_READ | VM_WRITE, "/bin/p"),
          vma(40, 44, VM_READ | VM_WRITE)});
  auto s = pmap_text(l, "");  // program unknown: the lowest file mapping
  EXPECT_NE(s.find("program text"), std::string::npos) << s;
  EXPECT_NE(s.find("VM_READ|VM_EXEC"), std::string::npos) << s;
  EXPECT_NE(s.find("  total                       28 KiB in 3 VMAs"), std::string::npos) << s;
}

}  // namespace
}  // namespace vmatrace
