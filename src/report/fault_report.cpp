#include "report/fault_report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/proc_maps.h"
#include "util/json.h"
#include "util/text.h"
#include "vmatrace/abi/events.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kUserEnd = 0x0000800000000000ull;
constexpr uint32_t kPfWrite = 1u << 1, kPfInstr = 1u << 4;  // x86 X86_PF_*

std::string basename_of(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

// Folded-stack frames are separated by ';' and end at the last space.
std::string frame(std::string s) {
  std::replace(s.begin(), s.end(), ';', ':');
  return s;
}

std::string pct(uint64_t n, uint64_t total) {
  char b[16];
  std::snprintf(b, sizeof(b), "%.2f%%", total ? 100.0 * n / total : 0.0);
  return b;
}

double share(uint64_t n, uint64_t total) { return total ? static_cast<double>(n) / total : 0.0; }

void counts_json(JsonWriter& w, const FaultCounts& c) {
  w.kv("faults", c.faults).kv("read", c.read).kv("write", c.write).kv("exec", c.exec);
  w.kv("major", c.major).kv("minor", c.minor);
}

}  // namespace

void FaultCounts::add(const FaultCounts& o) {
  faults += o.faults;
  read += o.read;
  write += o.write;
  exec += o.exec;
  major += o.major;
  minor += o.minor;
}

FaultCounts FaultCounts::of(uint32_t error_code, uint32_t flags) {
  FaultCounts c;
  c.faults = 1;
  if (!(flags & VMAT_FAULT_NO_ERROR_CODE)) {
    if (error_code & kPfInstr)
      c.exec = 1;
    else if (error_code & kPfWrite)
      c.write = 1;
    else
      c.read = 1;
  }
  if (flags & VMAT_FAULT_MAJOR) c.major = 1;
  if (flags & VMAT_FAULT_MINOR) c.minor = 1;
  return c;
}

std::string code_location(uint64_t ip, const Vma* vma, const Layout* layout) {
  if (ip >= kUserEnd) return "[kernel]";
  if (!vma || !vma->contains(ip)) return hex(ip);
  std::string name = layout ? maps_name(*layout, *vma) : (vma->path.empty() ? vma->special : vma->path).str();
  if (vma->is_file()) return basename_of(name) + "+" + hex(ip - vma->start + vma->pgoff * kPage);
  if (!name.empty()) return name + "+" + hex(ip - vma->start);
  char b[48];
  std::snprintf(b, sizeof(b), "anon@%" PRIx64 "+0x%" PRIx64, vma->start, ip - vma->start);
  return b;
}

std::string vma_label(const std::string& name, uint64_t start, uint64_t end) {
  if (!name.empty()) return name;
  char b[64];
  std::snprintf(b, sizeof(b), "anon %" PRIx64 "-%" PRIx64, start, end);
  return b;
}

FaultReport::FaultReport(FaultReportOptions opts) : opts_(opts) {
  if (opts_.interval_ns == 0) opts_.interval_ns = 100'000'000;
}

void FaultReport::note_process(uint32_t pid, const std::string& comm, const FaultCounts& c) {
  auto& p = procs_[pid];
  p.pid = pid;
  if (!comm.empty()) p.comm = comm;
  p.c.add(c);
}

void FaultReport::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (rec.type == VMAT_REC_NOTE) {
    if (rec.note->key == kNoteSessionStart) start_ts_ = rec.hdr.ts;
    return;
  }
  if (start_ts_ == 0) start_ts_ = rec.hdr.ts;
  if (rec.type != VMAT_EV_FAULT || !wanted(rec.hdr.pid)) return;
  const auto& f = rec.fault;
  FaultCounts c = FaultCounts::of(f.error_code, f.flags);
  if (f.flags & (VMAT_FAULT_MAJOR | VMAT_FAULT_MINOR)) majmin_known_ = true;
  const uint32_t pid = rec.hdr.pid;
  std::string comm(rec.comm);
  const std::string& pcomm = proc && !proc->comm.empty() ? proc->comm : comm;
  total_.add(c);
  note_process(pid, pcomm, c);
  auto& t = threads_[rec.hdr.tid];
  t.pid = pid, t.tid = rec.hdr.tid, t.comm = comm;
  t.c.add(c);
  if (rec.hdr.ts >= start_ts_) buckets_[(rec.hdr.ts - start_ts_) / opts_.interval_ns].add(c);

  const Layout* layout = proc ? &proc->layout : nullptr;
  const Vma* code = layout && f.ip < kUserEnd ? layout->find(f.ip) : nullptr;
  std::string loc = code_location(f.ip, code, layout);
  auto& ip = ips_[{pid, f.ip}];
  ip.pid = pid, ip.ip = f.ip;
  if (ip.location.empty()) ip.location = loc;
  ip.c.add(c);

  std::string where = "[unknown]";
  if (applied.applied && applied.fault_vma) {
    const Vma& v = *applied.fault_vma;
    attributed_++;
    auto& row = vmas_[{pid, v.id}];
    // The latest extent (a stack or heap grows; merges widen): the VMA as
    // it was at its last fault.
    row.pid = pid, row.start = v.start, row.end = v.end, row.perms = v.perms();
    row.name = layout ? maps_name(*layout, v) : v.path.str();
    row.c.add(c);
    pages_[pid][f.addr & ~(kPage - 1)] = {pages_[pid][f.addr & ~(kPage - 1)].first + 1, v.id};
    where = vma_label(row.name, v.start, v.end);
  }
  std::string obj = code ? vma_label(maps_name(*layout, *code), code->start, code->end) : "[unknown]";
  if (f.ip >= kUserEnd) obj = "[kernel]";
  folded_[frame(pcomm) + ";" + frame(basename_of(obj)) + ";" + frame(loc) + ";" + frame(where)]++;
}

void FaultReport::add_vma(uint32_t pid, const std::string& comm, uint64_t start, uint64_t end, const std::string& name,
                          const std::string& perms, const FaultCounts& c) {
  if (!wanted(pid)) return;
  if (c.major || c.minor) majmin_known_ = true;
  auto& row = vmas_[{pid, start}];
  row.pid = pid, row.start = start, row.end = std::max(row.end, end), row.name = name, row.perms = perms;
  row.c.add(c);
  total_.add(c);
  attributed_ += c.faults;
  note_process(pid, comm, c);
  folded_[frame(comm) + ";" + frame(vma_label(name, start, end))] += c.faults;
}

void FaultReport::add_unattributed(uint32_t pid, const std::string& comm, const FaultCounts& c) {
  if (!wanted(pid)) return;
  total_.add(c);
  note_process(pid, comm, c);
  folded_[frame(comm) + ";[unknown]"] += c.faults;
}

void FaultReport::add_page(uint32_t pid, uint64_t page_addr, uint64_t vma_start, uint64_t count) {
  if (!wanted(pid)) return;
  auto& p = pages_[pid][page_addr];
  p.first += count;
  p.second = vma_start;
}

void FaultReport::add_ip(uint32_t pid, uint64_t ip, const std::string& location, const FaultCounts& c) {
  if (!wanted(pid)) return;
  auto& row = ips_[{pid, ip}];
  row.pid = pid, row.ip = ip, row.location = location;
  row.c.add(c);
}

void FaultReport::add_thread(uint32_t pid, uint32_t tid, const std::string& comm, const FaultCounts& c) {
  if (!wanted(pid)) return;
  auto& t = threads_[tid];
  t.pid = pid, t.tid = tid, t.comm = comm;
  t.c.add(c);
}

template <typename T>
std::vector<T> FaultReport::cut(std::vector<T> v) const {
  if (opts_.top && v.size() > opts_.top) v.resize(opts_.top);
  return v;
}

std::vector<FaultReport::VmaRow> FaultReport::by_vma() const {
  std::vector<VmaRow> v;
  for (const auto& [k, r] : vmas_) v.push_back(r);
  std::stable_sort(v.begin(), v.end(), [](const VmaRow& a, const VmaRow& b) {
    return a.c.faults != b.c.faults ? a.c.faults > b.c.faults : a.start < b.start;
  });
  return cut(std::move(v));
}

std::vector<FaultReport::RangeRow> FaultReport::by_range() const {
  std::vector<RangeRow> v;
  for (const auto& [pid_, pages] : pages_) {
    // A copy: clang 14 cannot capture structured bindings in a lambda.
    const auto pid = pid_;
    RangeRow cur;
    uint64_t cur_vma = 0;
    bool open = false;
    auto close = [&] {
      if (!open) return;
      auto it = vmas_.find({pid, cur_vma});
      cur.vma = it == vmas_.end() ? "[unknown]" : vma_label(it->second.name, it->second.start, it->second.end);
      v.push_back(cur);
      open = false;
    };
    for (const auto& [page, fv] : pages) {
      if (open && page == cur.end && fv.second == cur_vma) {
        cur.end += kPage;
        cur.faults += fv.first;
        continue;
      }
      close();
      cur = RangeRow{pid, page, page + kPage, fv.first, ""};
      cur_vma = fv.second;
      open = true;
    }
    close();
  }
  std::stable_sort(v.begin(), v.end(), [](const RangeRow& a, const RangeRow& b) {
    return a.faults != b.faults ? a.faults > b.faults : a.start < b.start;
  });
  return cut(std::move(v));
}

std::vector<FaultReport::IpRow> FaultReport::by_ip() const {
  std::vector<IpRow> v;
  for (const auto& [k, r] : ips_) v.push_back(r);
  std::stable_sort(v.begin(), v.end(), [](const IpRow& a, const IpRow& b) {
    return a.c.faults != b.c.faults ? a.c.faults > b.c.faults : a.ip < b.ip;
  });
  return cut(std::move(v));
}

std::vector<FaultReport::ThreadRow> FaultReport::by_thread() const {
  std::vector<ThreadRow> v;
  for (const auto& [k, r] : threads_) v.push_back(r);
  std::stable_sort(v.begin(), v.end(), [](const ThreadRow& a, const ThreadRow& b) { return a.c.faults > b.c.faults; });
  return v;
}

std::vector<FaultReport::ThreadRow> FaultReport::by_process() const {
  std::vector<ThreadRow> v;
  for (const auto& [k, r] : procs_) v.push_back(r);
  std::stable_sort(v.begin(), v.end(), [](const ThreadRow& a, const ThreadRow& b) { return a.c.faults > b.c.faults; });
  return v;
}

std::vector<FaultReport::Bucket> FaultReport::timeline() const {
  std::vector<Bucket> v;
  if (buckets_.empty()) return v;
  uint64_t last = buckets_.rbegin()->first;
  for (uint64_t i = 0; i <= last; i++) {
    auto it = buckets_.find(i);
    v.push_back({i, it == buckets_.end() ? FaultCounts{} : it->second});
  }
  return v;
}

std::string FaultReport::text() const {
  std::string o;
  char b[512];
  std::snprintf(b, sizeof(b), "Page faults: %" PRIu64 " (read %" PRIu64 ", write %" PRIu64 ", exec %" PRIu64 "; ",
                total_.faults, total_.read, total_.write, total_.exec);
  o += b;
  if (majmin_known_)
    o += "major " + std::to_string(total_.major) + ", minor " + std::to_string(total_.minor) + ")";
  else
    o += "major/minor unknown: perf events unavailable)";
  o += "; " + pct(attributed_, total_.faults) + " in a known VMA; mode " + mode_;
  if (dropped_) o += "; " + std::to_string(dropped_) + " aggregate keys dropped (kernel maps full)";
  o += "\n\nTop VMAs\n";
  std::snprintf(b, sizeof(b), "%10s %8s %8s %8s %6s %8s %8s %7s  %s\n", "FAULTS", "SHARE", "READ", "WRITE", "EXEC",
                "MAJOR", "MINOR", "PID", "VMA");
  o += b;
  for (const auto& r : by_vma()) {
    std::snprintf(
        b, sizeof(b),
        "%10" PRIu64 " %8s %8" PRIu64 " %8" PRIu64 " %6" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7u  %s %s (%s)\n",
        r.c.faults, pct(r.c.faults, total_.faults).c_str(), r.c.read, r.c.write, r.c.exec, r.c.major, r.c.minor, r.pid,
        r.perms.c_str(), escape_text(vma_label(r.name, r.start, r.end)).c_str(), human_size(r.end - r.start).c_str());
    o += b;
  }
  o += "\nTop address ranges (adjacent faulted pages coalesced)\n";
  std::snprintf(b, sizeof(b), "%10s %8s %7s  %-33s %s\n", "FAULTS", "PAGES", "PID", "RANGE", "IN");
  o += b;
  for (const auto& r : by_range()) {
    char range[48];
    std::snprintf(range, sizeof(range), "%" PRIx64 "-%" PRIx64, r.start, r.end);
    std::snprintf(b, sizeof(b), "%10" PRIu64 " %8" PRIu64 " %7u  %-33s %s\n", r.faults, (r.end - r.start) / kPage,
                  r.pid, range, escape_text(r.vma).c_str());
    o += b;
  }
  o += "\nTop faulting code locations\n";
  std::snprintf(b, sizeof(b), "%10s %8s %8s %7s  %-18s %s\n", "FAULTS", "MAJOR", "MINOR", "PID", "IP", "LOCATION");
  o += b;
  for (const auto& r : by_ip()) {
    std::snprintf(b, sizeof(b), "%10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7u  %-18s %s\n", r.c.faults, r.c.major,
                  r.c.minor, r.pid, hex(r.ip).c_str(), escape_text(r.location).c_str());
    o += b;
  }
  auto tl = timeline();
  if (!tl.empty()) {
    std::snprintf(b, sizeof(b), "\nFaults over time (%.0f ms buckets)\n", opts_.interval_ns / 1e6);
    o += b;
    uint64_t peak = 0;
    for (const auto& x : tl) peak = std::max(peak, x.c.faults);
    for (const auto& x : tl) {
      int bar = peak ? static_cast<int>(40.0 * x.c.faults / peak + 0.5) : 0;
      std::snprintf(b, sizeof(b), "  +%8.3fs %10" PRIu64 " (major %" PRIu64 ") %s\n", x.index * opts_.interval_ns / 1e9,
                    x.c.faults, x.c.major, std::string(bar, '#').c_str());
      o += b;
    }
  }
  o += "\nBy process\n";
  for (const auto& r : by_process()) {
    std::snprintf(b, sizeof(b), "%10" PRIu64 " %8s  %u %s (major %" PRIu64 ", minor %" PRIu64 ")\n", r.c.faults,
                  pct(r.c.faults, total_.faults).c_str(), r.pid, escape_text(r.comm).c_str(), r.c.major, r.c.minor);
    o += b;
  }
  o += "\nBy thread\n";
  for (const auto& r : by_thread()) {
    std::snprintf(b, sizeof(b), "%10" PRIu64 " %8s  %u/%u %s (major %" PRIu64 ", minor %" PRIu64 ")\n", r.c.faults,
                  pct(r.c.faults, total_.faults).c_str(), r.pid, r.tid, escape_text(r.comm).c_str(), r.c.major,
                  r.c.minor);
    o += b;
  }
  return o;
}

std::string FaultReport::json() const {
  std::string o;
  JsonWriter w(o);
  const char* kShare = "%.6f";  // rounded on purpose: tests and pages compare them
  w.begin_object().kv("mode", mode_).kv("majmin_known", majmin_known_);
  counts_json(w, total_);
  w.kv("attributed", attributed_).kv("dropped", dropped_).kv("interval_ns", opts_.interval_ns);
  w.key("by_vma").begin_array();
  for (const auto& r : by_vma()) {
    w.begin_object().kv("pid", r.pid);
    w.key("start").hex(r.start);
    w.key("end").hex(r.end);
    w.kv("perms", r.perms).kv("path", r.name).kv("name", vma_label(r.name, r.start, r.end));
    counts_json(w, r.c);
    w.key("share").value(share(r.c.faults, total_.faults), kShare);
    w.end_object();
  }
  w.end_array().key("by_range").begin_array();
  for (const auto& r : by_range()) {
    w.begin_object().kv("pid", r.pid);
    w.key("start").hex(r.start);
    w.key("end").hex(r.end);
    w.kv("pages", (r.end - r.start) / kPage).kv("faults", r.faults).kv("vma", r.vma);
    w.key("share").value(share(r.faults, total_.faults), kShare);
    w.end_object();
  }
  w.end_array().key("by_ip").begin_array();
  for (const auto& r : by_ip()) {
    w.begin_object().kv("pid", r.pid);
    w.key("ip").hex(r.ip);
    w.kv("location", r.location);
    counts_json(w, r.c);
    w.key("share").value(share(r.c.faults, total_.faults), kShare);
    w.end_object();
  }
  w.end_array().key("timeline").begin_array();
  for (const auto& x : timeline()) {
    w.begin_object().kv("t_ns", x.index * opts_.interval_ns);
    counts_json(w, x.c);
    w.end_object();
  }
  w.end_array();
  auto rows = [&](std::string_view key, const std::vector<ThreadRow>& v, bool tid) {
    w.key(key).begin_array();
    for (const auto& r : v) {
      w.begin_object().kv("pid", r.pid);
      if (tid) w.kv("tid", r.tid);
      w.kv("comm", r.comm);
      counts_json(w, r.c);
      w.key("share").value(share(r.c.faults, total_.faults), kShare);
      w.end_object();
    }
    w.end_array();
  };
  rows("by_thread", by_thread(), true);
  rows("by_process", by_process(), false);
  w.end_object();
  return o;
}

std::string FaultReport::folded() const {
  std::string o;
  for (const auto& [stack, n] : folded_) {
    if (!n) continue;
    o += stack + " " + std::to_string(n) + "\n";
  }
  return o;
}

}  // namespace vmatrace
