// Cost of the frontend as work grows: the layout model and the Processor
// applying synthetic records to one process holding N VMAs (10, 1,000,
// 100,000, 1,000,000), and the memory the model spends per VMA.
//
// The process: N one-page anonymous VMAs side by side, alternating
// read-only and read-write so that none merge (mapmany.c builds the same
// layout for real). One cycle of records, repeated:
//   - mprotect a read-write page in the middle read-only: it merges with both
//     neighbours (vma_merge_existing_range()); mprotect it back: split out again;
//   - munmap a page in the last quarter, mmap it back (MAP_FIXED, same prot);
//   - a page fault in the first quarter (the model marks the anon_vma).
// The positions rotate over 64 places so a large layout is not all in cache.
// Every record carries the kernel's view of its VMA, as the live stream does
// (taken from the model itself, so the "kernel" always agrees).
//
// Run: build/bench/vmatrace_layout_bench [--benchmark_format=json]
// Counters: ns_per_event (lower is better; the target for the live consumer is
// 40 ns/event), bytes_per_vma (heap bytes the Layout holds per VMA).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "core/vm_flags.h"
#include "output/printer.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x100000000ull;
constexpr uint32_t kPid = 4242;
constexpr uint64_t kMay = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
// What mmap(PROT_READ) and mmap(PROT_READ|PROT_WRITE) of private anonymous
// memory give (accountable writable private memory carries VM_ACCOUNT).
constexpr uint64_t kRo = VM_READ | kMay;
constexpr uint64_t kRw = VM_READ | VM_WRITE | kMay | VM_ACCOUNT;
constexpr int kPlaces = 64;

uint64_t page_addr(int64_t i) { return kBase + static_cast<uint64_t>(i) * kPage; }
bool is_rw(int64_t i) { return (i & 1) != 0; }

Vma page_vma(int64_t i) {
  Vma v;
  v.start = page_addr(i);
  v.end = v.start + kPage;
  v.flags = is_rw(i) ? kRw : kRo;
  v.pgoff = v.start / kPage;
  return v;
}

std::vector<Vma> alternating_layout(int64_t n) {
  std::vector<Vma> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) out.push_back(page_vma(i));
  return out;
}

vmat_vma_info info_of(const Vma& v) {
  vmat_vma_info k{};
  k.start = v.start;
  k.end = v.end;
  k.flags = v.flags;
  k.pgoff = v.pgoff;
  k.state = VMAT_VMA_VALID;
  return k;
}

template <typename T>
std::vector<std::byte> bytes_of(const T& v) {
  std::vector<std::byte> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  auto size = static_cast<uint32_t>(b.size());
  std::memcpy(b.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
  return b;
}

vmat_syscall_event syscall_event(uint32_t sys, uint64_t ts, int64_t ret, uint64_t a0, uint64_t a1, uint64_t a2,
                                 uint64_t a3) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, kPid, kPid, "bench");
  e.sys = sys;
  e.ret = ret;
  e.args[0] = a0;
  e.args[1] = a1;
  e.args[2] = a2;
  e.args[3] = a3;
  e.args[4] = static_cast<uint64_t>(-1);
  return e;
}

DecodedRecord decode_or_throw(const std::vector<std::byte>& b) {
  std::string err;
  auto d = decode_record(b, &err);
  if (!d) throw std::runtime_error("bench record does not decode: " + err);
  return *d;
}

// A Processor holding the alternating layout, and one cycle of records that
// leaves that layout as it found it. Records keep their bytes alive (a
// DecodedRecord's views point into them).
class Workload {
 public:
  explicit Workload(int64_t n) : n_(n) {
    if (n < 8) throw std::invalid_argument("layout bench needs at least 8 VMAs");
    LayoutRecord l;
    l.reason = LayoutReason::kAttach;
    l.vmas = alternating_layout(n);
    seed_bytes_ = encode_layout(make_header(VMAT_REC_LAYOUT, 1, kPid, kPid, "bench"), l);
    build_cycle();
  }

  void seed(Processor& p) const { p.apply(decode_or_throw(seed_bytes_), nullptr); }
  const std::vector<DecodedRecord>& cycle() const { return cycle_; }

 private:
  // Odd (read-write) pages in the middle half, any page in the last quarter,
  // any page in the first quarter.
  int64_t toggle_page(int k) const {
    int64_t span = n_ / 2;
    return (n_ / 4 + (static_cast<int64_t>(k) * span) / kPlaces) | 1;
  }
  int64_t unmap_page(int k) const { return 3 * n_ / 4 + (static_cast<int64_t>(k) * (n_ / 4 - 1)) / kPlaces; }
  int64_t fault_page(int k) const { return (static_cast<int64_t>(k) * (n_ / 4)) / kPlaces; }

  // Applies `e` to the scratch model, then stores it with the VMA the model
  // now has at `at` as the kernel's view (none after a munmap).
  void add(vmat_syscall_event e, uint64_t at, bool has_vma) {
    scratch_.apply(decode_or_throw(bytes_of(e)), nullptr);
    if (has_vma) {
      const Vma* v = scratch_.process(kPid)->layout.find(at);
      if (!v) throw std::logic_error("bench cycle: no VMA at the syscall's address");
      e.vma[0] = info_of(*v);
    }
    bytes_.push_back(bytes_of(e));
  }

  void build_cycle() {
    seed(scratch_);
    uint64_t ts = 2;
    for (int k = 0; k < kPlaces; k++) {
      int64_t t = toggle_page(k), u = unmap_page(k), f = fault_page(k);
      add(syscall_event(VMAT_SYS_MPROTECT, ts++, 0, page_addr(t), kPage, 1 /* PROT_READ */, 0), page_addr(t), true);
      if (k == 0 && scratch_.process(kPid)->layout.size() != static_cast<size_t>(n_ - 2))
        throw std::logic_error("bench cycle: mprotect did not merge the page with both neighbours");
      add(syscall_event(VMAT_SYS_MPROTECT, ts++, 0, page_addr(t), kPage, 3, 0), page_addr(t), true);
      add(syscall_event(VMAT_SYS_MUNMAP, ts++, 0, page_addr(u), kPage, 0, 0), 0, false);
      auto m = syscall_event(VMAT_SYS_MMAP, ts++, static_cast<int64_t>(page_addr(u)), page_addr(u), kPage,
                             is_rw(u) ? 3 : 1, 0x32 /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED */);
      m.vma[0] = info_of(page_vma(u));
      add(m, page_addr(u), true);
      vmat_fault_event fe{};
      fe.hdr = make_header(VMAT_EV_FAULT, ts++, kPid, kPid, "bench");
      fe.addr = page_addr(f) + 8;
      fe.error_code = 0x6;  // user write
      fe.flags = VMAT_FAULT_MINOR;
      scratch_.apply(decode_or_throw(bytes_of(fe)), nullptr);
      bytes_.push_back(bytes_of(fe));
    }
    // The cycle must give back the layout it started from, or repeating it
    // would measure something else.
    const auto& l = scratch_.process(kPid)->layout;
    if (l.size() != static_cast<size_t>(n_))
      throw std::logic_error("bench cycle changes the VMA count: " + std::to_string(l.size()) +
                             " != " + std::to_string(n_));
    for (const auto& b : bytes_) cycle_.push_back(decode_or_throw(b));
  }

  int64_t n_;
  std::vector<std::byte> seed_bytes_;
  Processor scratch_;
  std::vector<std::vector<std::byte>> bytes_;
  std::vector<DecodedRecord> cycle_;
};

// Sees every record, as the live printer does, and does nothing with it:
// the Processor then derives the VMA changes (what live tracing pays).
class NullSink : public RecordSink {
 public:
  void on_record(const DecodedRecord&, const Applied& a, const ProcessState*) override {
    benchmark::DoNotOptimize(a.changes.size());
  }
};

void run_cycles(benchmark::State& state, const Workload& w, Processor& p, RecordSink* sink) {
  const auto& cycle = w.cycle();
  size_t i = 0;
  for (auto _ : state) {
    p.apply(cycle[i], sink);
    if (++i == cycle.size()) i = 0;
  }
  // Stamps would run backwards on the next cycle; the Processor only compares
  // them with the seed's, so repeating them is fine.
  state.SetItemsProcessed(state.iterations());
  state.counters["ns_per_event"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Live consumer: records applied with a sink, VMA changes derived.
void BM_ProcessorLive(benchmark::State& state) {
  Workload w(state.range(0));
  Processor p;
  w.seed(p);
  NullSink sink;
  run_cycles(state, w, p, &sink);
}

// Live consumer printing text to /dev/null (what `vmatrace trace > file` does).
void BM_ProcessorPrintText(benchmark::State& state) {
  Workload w(state.range(0));
  Processor p;
  w.seed(p);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> null(std::fopen("/dev/null", "w"), &std::fclose);
  if (!null) {
    state.SkipWithError("cannot open /dev/null");
    return;
  }
  Printer printer(null.get(), PrinterOptions{});
  run_cycles(state, w, p, &printer);
  printer.flush();
}

// Replay engine alone (`vmatrace replay --stats`): no sink, no change derivation.
void BM_ProcessorReplay(benchmark::State& state) {
  Workload w(state.range(0));
  Processor p;
  w.seed(p);
  run_cycles(state, w, p, nullptr);
}

// The layout model alone: the mprotect merge/split pair.
void BM_LayoutMprotectMergeSplit(benchmark::State& state) {
  int64_t n = state.range(0);
  Layout l;
  l.seed(alternating_layout(n));
  int k = 0;
  for (auto _ : state) {
    int64_t t = (n / 4 + (static_cast<int64_t>(k) * (n / 2)) / kPlaces) | 1;
    benchmark::DoNotOptimize(l.mprotect(page_addr(t), kPage, 1));
    benchmark::DoNotOptimize(l.mprotect(page_addr(t), kPage, 3));
    if (++k == kPlaces) k = 0;
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["ns_per_event"] = benchmark::Counter(static_cast<double>(state.iterations() * 2),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Heap bytes the model holds per VMA (glibc's in-use count around seeding;
// the benchmark runs on the main thread, so all of it is in the main arena).
void BM_LayoutMemory(benchmark::State& state) {
  int64_t n = state.range(0);
  double per_vma = 0;
  // Enough layouts for 100,000 VMAs in all: glibc's per-thread cache holds
  // a few freed chunks that mallinfo2() counts as in use, which would hide
  // a small layout's allocations.
  const int64_t copies = std::max<int64_t>(1, 100000 / n);
  for (auto _ : state) {
    // Measured from before the input vectors exist to after seed() has
    // consumed and freed them: what stays is the model's own.
    size_t before = mallinfo2().uordblks;
    std::vector<std::unique_ptr<Layout>> layouts;
    layouts.reserve(static_cast<size_t>(copies));
    size_t vector_bytes = layouts.capacity() * sizeof(layouts[0]);
    for (int64_t c = 0; c < copies; c++) {
      layouts.push_back(std::make_unique<Layout>());
      layouts.back()->seed(alternating_layout(n));
    }
    size_t after = mallinfo2().uordblks;
    per_vma = static_cast<double>(after - before - vector_bytes) / static_cast<double>(n * copies);
    benchmark::DoNotOptimize(layouts.back()->size());
  }
  state.counters["bytes_per_vma"] = per_vma;
  state.counters["sizeof_vma"] = static_cast<double>(sizeof(Vma));
}

constexpr int64_t kSizes[] = {10, 1000, 100000, 1000000};

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : kSizes) b->Arg(n);
}

BENCHMARK(BM_ProcessorLive)->Apply(sizes);
BENCHMARK(BM_ProcessorPrintText)->Apply(sizes);
BENCHMARK(BM_ProcessorReplay)->Apply(sizes);
BENCHMARK(BM_LayoutMprotectMergeSplit)->Apply(sizes);
BENCHMARK(BM_LayoutMemory)->Apply(sizes)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vmatrace

BENCHMARK_MAIN();
