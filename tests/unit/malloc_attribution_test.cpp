// The pure part of malloc growth attribution (core/malloc_attribution.h),
// the summary (report/malloc_report.h), and the libdw unwinder on a stack
// this test captures from itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/malloc_attribution.h"
#include "core/vm_flags.h"
#include "report/malloc_report.h"
#include "sym/unwinder.h"
#include "trace/procfs.h"

namespace vmatrace {
namespace {

StackFrame frame(const std::string& symbol, const std::string& module = "/lib/libc.so.6") {
  StackFrame f;
  f.symbol = symbol;
  f.function = demangle(symbol);
  f.module = module;
  return f;
}

TEST(MallocAttribution, AllocatorNames) {
  EXPECT_EQ(allocator_name("malloc"), "malloc");
  EXPECT_EQ(allocator_name("__libc_malloc"), "malloc");
  EXPECT_EQ(allocator_name("malloc@@GLIBC_2.2.5"), "malloc");
  EXPECT_EQ(allocator_name("__libc_calloc"), "calloc");
  EXPECT_EQ(allocator_name("realloc"), "realloc");
  EXPECT_EQ(allocator_name("reallocarray"), "reallocarray");
  EXPECT_EQ(allocator_name("__posix_memalign"), "posix_memalign");
  EXPECT_EQ(allocator_name("aligned_alloc"), "aligned_alloc");
  EXPECT_EQ(allocator_name("__libc_memalign"), "memalign");
  EXPECT_EQ(allocator_name("valloc"), "valloc");
  EXPECT_EQ(allocator_name("pvalloc"), "pvalloc");
  EXPECT_EQ(allocator_name("_Znwm"), "operator new");
  EXPECT_EQ(allocator_name("_ZnwmRKSt9nothrow_t"), "operator new");
  EXPECT_EQ(allocator_name("_ZnwmSt11align_val_t"), "operator new");
  EXPECT_EQ(allocator_name("_Znam"), "operator new[]");
  EXPECT_EQ(allocator_name("_ZnamSt11align_val_tRKSt9nothrow_t"), "operator new[]");
  // Not allocator entry points: internals, free, the syscalls, look-alikes.
  for (const char* s : {"free", "__libc_free", "_int_malloc", "sysmalloc", "mmap", "__mmap", "brk", "sbrk",
                        "malloc_trim", "mallocx", "my_malloc", "_ZdlPv", "", "_Z3foov"})
    EXPECT_FALSE(allocator_name(s)) << s;
}

// The replacement allocators' names, table by table: every prefixed form
// of every C entry point, their C++ entry points, and what stays unnamed.
TEST(MallocAttribution, ReplacementAllocatorEntryPoints) {
  for (const char* entry : {"malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
                            "memalign", "valloc", "pvalloc"})
    for (const char* prefix : {"", "__libc_", "__", "je_", "tc_", "mi_"}) {
      std::string sym = std::string(prefix) + entry;
      EXPECT_EQ(allocator_name(sym), entry) << sym;
      EXPECT_EQ(allocator_name(sym + "@@VERS_1.0"), entry) << sym;
    }
  const std::pair<const char*, const char*> cases[] = {
      {"tc_new", "operator new"},
      {"tc_new_nothrow", "operator new"},
      {"tc_new_aligned_nothrow", "operator new"},
      {"tc_newarray", "operator new[]"},
      {"tc_newarray_aligned", "operator new[]"},
      {"tc_malloc_skip_new_handler", "malloc"},
      {"mi_new", "operator new"},
      {"mi_new_aligned", "operator new"},
      {"mi_new_n", "operator new[]"},
      {"mi_zalloc", "calloc"},
      {"mi_mallocn", "malloc"},
      {"mi_reallocf", "realloc"},
      {"mi_malloc_aligned", "aligned_alloc"},
      // sized and aligned operator new/new[] of any library (jemalloc exports them)
      {"_ZnwmSt11align_val_tRKSt9nothrow_t", "operator new"},
      {"_ZnamSt11align_val_t", "operator new[]"},
  };
  for (const auto& [sym, name] : cases) EXPECT_EQ(allocator_name(sym), name) << sym;
  for (const char* s : {"je_free", "tc_free", "mi_free", "tc_delete", "mi_heap_new", "je_malloc_usable_size",
                        "je_mallocx2", "jemalloc", "tc_", "mi_", "_ZdaPvm"})
    EXPECT_FALSE(allocator_name(s)) << s;
}

TEST(MallocAttribution, AllocatorLibraries) {
  EXPECT_EQ(allocator_library(frame("", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")), "jemalloc");
  EXPECT_EQ(allocator_library(frame("mallocx", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")), "jemalloc");
  EXPECT_EQ(allocator_library(frame("", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")), "tcmalloc");
  EXPECT_EQ(allocator_library(frame("", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4.5.9")), "tcmalloc");
  EXPECT_EQ(allocator_library(frame("", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0")), "mimalloc");
  // Linked statically: by the internals' symbols.
  EXPECT_EQ(allocator_library(frame("je_extent_alloc_mmap", "/usr/bin/app")), "jemalloc");
  EXPECT_EQ(allocator_library(frame("TCMalloc_SystemAlloc", "/usr/bin/app")), "tcmalloc");
  EXPECT_EQ(allocator_library(frame("_ZN8tcmalloc8PageHeap8GrowHeapEm", "/usr/bin/app")), "tcmalloc");
  EXPECT_EQ(allocator_library(frame("_mi_os_alloc", "/usr/bin/app")), "mimalloc");
  for (const char* s : {"_int_malloc", "sysmalloc", "malloc", "main", "jemalloc_init", ""})
    EXPECT_FALSE(allocator_library(frame(s))) << s;
  EXPECT_FALSE(allocator_library(frame("zmalloc", "/usr/bin/redis-server")));
}

TEST(MallocAttribution, JemallocReachedByATailCallIsJemalloc) {
  // redis: zmalloc -> malloc, which jumps to its body: no entry point on the
  // stack, only jemalloc's unnamed internals (Debian strips its symtab).
  const std::string je = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  std::vector<StackFrame> st = {frame("mmap64"),
                                frame("", je),
                                frame("", je),
                                frame("sdallocx", je),  // the nearest exported symbol, wrongly
                                frame("zmalloc", "/usr/bin/redis-server"),
                                frame("main", "/usr/bin/redis-server")};
  Attribution a = attribute(st);
  EXPECT_EQ(a.allocator, "jemalloc");
  EXPECT_EQ(a.allocator_frame, 3u);
  EXPECT_EQ(a.call_site, 4u);
}

TEST(MallocAttribution, EntryPointInsideAnAllocatorLibraryNamesIt) {
  const std::string je = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  std::vector<StackFrame> st = {frame("mmap64"), frame("", je), frame("calloc", je), frame("", je),
                                frame("load", "/bin/app")};
  Attribution a = attribute(st);
  EXPECT_EQ(a.allocator, "calloc");
  EXPECT_EQ(a.allocator_frame, 3u);
  EXPECT_EQ(a.call_site, 4u);
  // operator new of libstdc++ over jemalloc's malloc: operator new.
  std::vector<StackFrame> cxx = {frame("mmap64"), frame("", je), frame("malloc", je),
                                 frame("_Znwm", "/lib/libstdc++.so.6"), frame("_ZN3App4loadEv", "/bin/app")};
  EXPECT_EQ(attribute(cxx).allocator, "operator new");
  EXPECT_EQ(attribute(cxx).call_site, 4u);
  // mimalloc's tcmalloc-style static build, internal names only.
  std::vector<StackFrame> mi = {frame("mmap"), frame("_mi_prim_alloc", "/bin/app"), frame("_mi_os_alloc", "/bin/app"),
                                frame("mi_heap_malloc_small", "/bin/app"), frame("fill", "/bin/app")};
  EXPECT_EQ(attribute(mi).allocator, "mimalloc");
  EXPECT_EQ(attribute(mi).call_site, 4u);
}

TEST(MallocAttribution, OutermostAllocatorAndItsCaller) {
  // brk <- sbrk <- sysmalloc <- _int_malloc <- malloc <- parse_blob <- main
  std::vector<StackFrame> st = {frame("brk"),
                                frame("__sbrk"),
                                frame("sysmalloc"),
                                frame("_int_malloc"),
                                frame("__libc_malloc"),
                                frame("parse_blob", "/bin/app"),
                                frame("main", "/bin/app")};
  Attribution a = attribute(st);
  ASSERT_TRUE(a.allocator);
  EXPECT_EQ(*a.allocator, "malloc");
  EXPECT_EQ(a.allocator_frame, 4u);
  EXPECT_EQ(a.call_site, 5u);
}

TEST(MallocAttribution, OperatorNewWinsOverTheMallocItCalls) {
  std::vector<StackFrame> st = {frame("__mmap"),
                                frame("sysmalloc"),
                                frame("_int_malloc"),
                                frame("malloc"),
                                frame("_Znwm", "/lib/libstdc++.so.6"),
                                frame("_ZN5store5Table5buildEv", "/bin/app"),
                                frame("main", "/bin/app")};
  Attribution a = attribute(st);
  EXPECT_EQ(a.allocator, "operator new");
  ASSERT_EQ(a.call_site, 5u);
  EXPECT_EQ(st[*a.call_site].function, "store::Table::build()");
}

TEST(MallocAttribution, CallocIsNotMistakenForTheMallocInside) {
  std::vector<StackFrame> st = {frame("__mmap"), frame("_int_malloc"), frame("__libc_calloc"),
                                frame("large_calloc", "/bin/app")};
  EXPECT_EQ(attribute(st).allocator, "calloc");
}

TEST(MallocAttribution, NoAllocatorFrameIsNotAttributed) {
  std::vector<StackFrame> st = {frame("__mmap"), frame("direct_mmap", "/bin/app"), frame("main", "/bin/app")};
  Attribution a = attribute(st);
  EXPECT_FALSE(a.allocator);
  EXPECT_FALSE(a.allocator_frame);
  EXPECT_EQ(a.call_site, 1u);  // the syscall's caller, named but not blamed
  EXPECT_FALSE(attribute({}).allocator);
  EXPECT_FALSE(attribute({}).call_site);
}

TEST(MallocAttribution, AllocatorAtTheEndOfATruncatedStackHasNoCallSite) {
  Attribution a = attribute({frame("__mmap"), frame("malloc")});
  EXPECT_EQ(a.allocator, "malloc");
  EXPECT_FALSE(a.call_site);
}

TEST(MallocAttribution, Demangle) {
  EXPECT_EQ(demangle("_ZN5store5Table5buildEv"), "store::Table::build()");
  EXPECT_EQ(demangle("_Znwm"), "operator new(unsigned long)");
  EXPECT_EQ(demangle("malloc"), "malloc");
  EXPECT_EQ(demangle("_Zbroken"), "_Zbroken");
}

MallocGrowth growth(const std::string& alloc, const std::string& via, uint64_t bytes, const std::string& site) {
  MallocGrowth g;
  g.via = via;
  g.bytes = bytes;
  g.stack = {frame("__mmap"), frame(alloc.empty() ? "x" : alloc), frame(site, "/bin/app")};
  g.stack[2].file = "/src/app.c";
  g.stack[2].line = 42;
  g.attribution = attribute(g.stack);
  return g;
}

TEST(MallocReport, RanksCallSitesByBytes) {
  MallocReport r;
  r.add(growth("malloc", "brk", 135168, "fill_table"));
  r.add(growth("malloc", "brk", 135168, "fill_table"));
  r.add(growth("calloc", "mmap", 4 << 20, "load_image"));
  r.add(growth("realloc", "mremap", 6 << 20, "grow_buffer"));
  auto sites = r.sites();
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(sites[0].function, "grow_buffer");
  EXPECT_EQ(sites[0].allocator, "realloc");
  EXPECT_EQ(sites[0].mmap_bytes, 6u << 20);
  EXPECT_EQ(sites[1].function, "load_image");
  EXPECT_EQ(sites[2].function, "fill_table");
  EXPECT_EQ(sites[2].count, 2u);
  EXPECT_EQ(sites[2].brk_count, 2u);
  EXPECT_EQ(sites[2].brk_bytes, 2u * 135168);
  EXPECT_EQ(sites[2].largest, 135168u);
  EXPECT_EQ(sites[2].location, "app.c:42");
  EXPECT_EQ(r.growths(), 4u);
  std::string j = r.json();
  EXPECT_NE(j.find("\"largest\":{\"pid\":0,\"tid\":0,\"allocator\":\"realloc\",\"via\":\"mremap\""), std::string::npos)
      << j;
  EXPECT_NE(r.text().find("realloc  grow_buffer (app.c:42)"), std::string::npos) << r.text();
}

TEST(MallocReport, GrowthWithoutAllocatorIsSaidSo) {
  MallocGrowth g;
  g.via = "mmap";
  g.bytes = 8192;
  g.stack = {frame("__mmap"), frame("direct_mmap", "/bin/app")};
  g.attribution = attribute(g.stack);
  EXPECT_EQ(growth_text(g).rfind("not from an allocator: via mmap +8.0 KiB", 0), 0u) << growth_text(g);
  std::string j = growth_json_fields(g);
  EXPECT_NE(j.find(",\"allocator\":null,\"via\":\"mmap\",\"bytes\":8192"), std::string::npos) << j;
  EXPECT_NE(j.find("\"call_site\":{\"pc\":\"0x0\",\"function\":\"direct_mmap\""), std::string::npos) << j;
}

// ---- the unwinder on a real stack: this process's own --------------------

// Registers in DWARF order and a copy of the stack from sp, taken inside
// this function: CFI for its pc describes exactly this frame.
// Reads raw stack memory, redzones included under ASan: not instrumented,
// and copied with volatile loads (memcpy would be intercepted).
__attribute__((noinline, no_sanitize("address"))) void capture_here(StackSample& s, std::vector<std::byte>& stack,
                                                                    uint64_t stack_end) {
  uint64_t* r = s.regs;
  asm volatile(
      "movq %%rbx, 24(%0)\n\t"
      "movq %%rbp, 48(%0)\n\t"
      "movq %%rsp, 56(%0)\n\t"
      "movq %%r12, 96(%0)\n\t"
      "movq %%r13, 104(%0)\n\t"
      "movq %%r14, 112(%0)\n\t"
      "movq %%r15, 120(%0)\n\t"
      "leaq 0(%%rip), %%rax\n\t"
      "movq %%rax, 128(%0)\n\t"
      :
      : "r"(r)
      : "rax", "memory");
  stack.resize(std::min<uint64_t>(8192, stack_end - r[VMAT_UREG_SP]));
  const volatile std::byte* from = reinterpret_cast<const volatile std::byte*>(r[VMAT_UREG_SP]);
  for (size_t i = 0; i < stack.size(); i++) stack[i] = from[i];
  s.stack = stack;
}

__attribute__((noinline)) std::vector<StackFrame> unwind_from_named_caller(Unwinder& u, uint64_t stack_end) {
  StackSample s;
  s.pid = s.tid = static_cast<uint32_t>(::getpid());
  std::vector<std::byte> stack;
  capture_here(s, stack, stack_end);
  auto frames = u.unwind(s);
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
  return frames;
}

// This process's code objects as an Unwinder's modules, and the end of the
// stack VMA that holds `on_stack` (0 when none does).
std::pair<std::vector<ModuleMapping>, uint64_t> own_process(const void* on_stack) {
  LayoutRecord l = read_proc_layout_record(::getpid());
  std::set<std::string> code;
  for (const auto& v : l.vmas)
    if (!v.path.empty() && (v.flags & VM_EXEC)) code.insert(v.path);
  std::vector<ModuleMapping> mods;
  uint64_t stack_end = 0, here = reinterpret_cast<uint64_t>(on_stack);
  for (const auto& v : l.vmas) {
    if (code.count(v.path)) mods.push_back({v.path, v.start, v.end, v.pgoff * 4096});
    if (v.start <= here && here < v.end) stack_end = v.end;
  }
  return {std::move(mods), stack_end};
}

TEST(Unwinder, UnwindsOwnStackThroughCfi) {
  int on_stack = 0;
  const auto [mods, stack_end] = own_process(&on_stack);
  ASSERT_NE(stack_end, 0u);
  Unwinder u(static_cast<uint32_t>(::getpid()), mods, "");
  ASSERT_EQ(u.error(), "");
  auto frames = unwind_from_named_caller(u, stack_end);
  std::string names;
  for (const auto& f : frames) names += f.function + " | ";
  ASSERT_GE(frames.size(), 3u) << names;
  EXPECT_NE(frames[0].function.find("capture_here"), std::string::npos) << names;
  EXPECT_NE(frames[1].function.find("unwind_from_named_caller"), std::string::npos) << names;
  EXPECT_NE(frames[1].file.find("malloc_attribution_test.cpp"), std::string::npos) << frames[1].file;
  EXPECT_GT(frames[1].line, 0);
  EXPECT_NE(frames[2].function.find("UnwindsOwnStackThroughCfi"), std::string::npos) << names;
}

// Two Unwinders sharing a FrameCache (two processes running the same
// code): the second finds every frame the first symbolized (the cache does
// not grow) and gives the same functions and lines.
TEST(Unwinder, SharedFrameCacheServesASecondProcess) {
  int on_stack = 0;
  const auto [mods, stack_end] = own_process(&on_stack);
  ASSERT_NE(stack_end, 0u);
  FrameCache shared;
  Unwinder first(static_cast<uint32_t>(::getpid()), mods, "", &shared);
  Unwinder second(static_cast<uint32_t>(::getpid()), mods, "", &shared);
  std::vector<StackFrame> got[2];
  size_t cached = 0;
  for (int i = 0; i < 2; i++) {  // one call site for both: the same stack
    got[i] = unwind_from_named_caller(i == 0 ? first : second, stack_end);
    if (i == 0) cached = shared.size();
  }
  const auto& a = got[0];
  const auto& b = got[1];
  ASSERT_GE(a.size(), 3u);
  EXPECT_GE(cached, 3u) << "frames of objects with a build id are shared";
  EXPECT_EQ(shared.size(), cached) << "the second unwinder looked frames up again";
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) {
    EXPECT_EQ(a[i].pc, b[i].pc);
    EXPECT_EQ(a[i].function, b[i].function);
    EXPECT_EQ(a[i].file, b[i].file);
    EXPECT_EQ(a[i].line, b[i].line);
    EXPECT_EQ(a[i].module, b[i].module);
  }
  EXPECT_NE(b[1].function.find("unwind_from_named_caller"), std::string::npos);
}

__attribute__((noinline)) std::vector<StackFrame> unwind_without_lines(Unwinder& u, uint64_t stack_end) {
  StackSample s;
  s.pid = s.tid = static_cast<uint32_t>(::getpid());
  std::vector<std::byte> stack;
  capture_here(s, stack, stack_end);
  auto frames = u.unwind(s, 64, Unwinder::SourceLines::kNone);
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
  return frames;
}

// Source lines on demand: none from unwind(kNone), the frame's own from
// add_source_line(). A second Unwinder (a dlopen rebuilds a process's
// Unwinder; another process maps the same objects) gets them from the
// shared cache: no new look-up, no second Dwfl of the object. Without a
// shared cache the Unwinder's own Dwfl answers.
TEST(Unwinder, SourceLinesOnlyForFramesAskedFor) {
  int on_stack = 0;
  const auto [mods, stack_end] = own_process(&on_stack);
  ASSERT_NE(stack_end, 0u);
  FrameCache shared;
  size_t lines = 0, objects = 0;
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE(round);
    Unwinder u(static_cast<uint32_t>(::getpid()), mods, "", round < 2 ? &shared : nullptr);
    ASSERT_EQ(u.error(), "");
    auto frames = unwind_without_lines(u, stack_end);
    ASSERT_GE(frames.size(), 3u);
    for (const auto& f : frames) EXPECT_EQ(f.file, "") << f.function;
    EXPECT_TRUE(frames[0].activation);
    EXPECT_FALSE(frames[1].activation);
    ASSERT_NE(frames[1].function.find("unwind_without_lines"), std::string::npos) << frames[1].function;
    u.add_source_line(frames[1]);
    EXPECT_NE(frames[1].file.find("malloc_attribution_test.cpp"), std::string::npos) << frames[1].file;
    EXPECT_GT(frames[1].line, 0);
    EXPECT_EQ(frames[2].file, "");
    if (round == 0) {
      lines = shared.source_lines();
      objects = shared.objects();
      EXPECT_EQ(lines, 1u) << "one frame asked for: one look-up";
      EXPECT_EQ(objects, 1u) << "the test binary's own Dwfl";
    } else {
      EXPECT_EQ(shared.source_lines(), lines) << "looked up again";
      EXPECT_EQ(shared.objects(), objects) << "a second Dwfl of the same object";
    }
  }
}

TEST(Unwinder, GarbageStackStopsWithoutCrashing) {
  Unwinder u(1, {}, "");
  StackSample s;
  s.regs[VMAT_UREG_IP] = 0x1234;
  s.regs[VMAT_UREG_SP] = 0x7fff0000;
  auto frames = u.unwind(s);
  ASSERT_LE(frames.size(), 1u);
  if (!frames.empty()) {
    EXPECT_EQ(frames[0].function, "");
  }
}

}  // namespace
}  // namespace vmatrace
