#include "trace/fault_collector.h"

#include <cstdio>
#include <map>
#include <string>

#include "core/proc_maps.h"

namespace vmatrace {

void FaultSummaryCollector::before_apply(const DecodedRecord& rec, const Processor& proc) {
  if (rec.type == VMAT_EV_EXIT && (rec.exit.flags & VMAT_EXIT_GROUP)) collect(proc, rec.hdr.pid);
}

void FaultSummaryCollector::collect(const Processor& proc, std::optional<uint32_t> pid) {
  FaultSummaryData d = tracer_.take_fault_summary(pid);
  uint64_t dropped = 0;
  for (uint64_t n : d.dropped) dropped += n;
  report_.add_dropped(dropped - dropped_seen_);
  report_.set_start_ts(proc.start_ts());
  dropped_seen_ = dropped;
  auto counts = [](const vmat_fault_counts& c) {
    FaultCounts f;
    f.faults = c.faults, f.read = c.read, f.write = c.write, f.exec = c.exec, f.major = c.major, f.minor = c.minor;
    return f;
  };
  auto comm_of = [&](uint32_t p) {
    const ProcessState* st = proc.process(p);
    return st ? st->comm : std::string();
  };
  // Per process, the VMAs the kernel counted, to place pages in them.
  std::map<uint32_t, std::map<uint64_t, uint64_t>> extents;  // start -> end
  for (const auto& [k, v] : d.vmas) {
    const ProcessState* st = proc.process(k.tgid);
    if (k.start == 0) {
      report_.add_unattributed(k.tgid, comm_of(k.tgid), counts(v.c));
      continue;
    }
    extents[k.tgid][k.start] = v.end;
    // Named from the model when it still has the VMA; else from what the
    // kernel told us (the VMA was unmapped before the process ended).
    Vma vma;
    vma.start = k.start, vma.end = v.end, vma.flags = v.vm_flags, vma.ino = v.ino, vma.dev = v.dev;
    std::string name;
    if (const Vma* known = st ? st->layout.find(k.start) : nullptr; known && known->start == k.start) {
      name = maps_name(st->layout, *known);
    } else if (v.ino) {
      char b[64];
      std::snprintf(b, sizeof(b), "[file %02x:%02x %llu]", v.dev >> 20, v.dev & 0xfffff,
                    static_cast<unsigned long long>(v.ino));
      name = b;
    }
    report_.add_vma(k.tgid, comm_of(k.tgid), k.start, v.end, name, vma.perms(), counts(v.c));
  }
  for (const auto& [k, n] : d.pages) {
    uint64_t addr = k.addr << 12, start = 0;
    auto& ex = extents[k.tgid];
    if (auto it = ex.upper_bound(addr); it != ex.begin() && addr < std::prev(it)->second) start = std::prev(it)->first;
    report_.add_page(k.tgid, addr, start, n);
  }
  for (const auto& [k, c] : d.ips) {
    const ProcessState* st = proc.process(k.tgid);
    const Vma* code = st && k.addr < 0x0000800000000000ull ? st->layout.find(k.addr) : nullptr;
    report_.add_ip(k.tgid, k.addr, code_location(k.addr, code, st ? &st->layout : nullptr), counts(c));
  }
  for (const auto& [k, c] : d.threads) report_.add_thread(k.tgid, k.tid, comm_of(k.tgid), counts(c));
}

}  // namespace vmatrace
