#include "report/top_view.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/pmap.h"
#include "core/proc_maps.h"
#include "core/syscall_names.h"
#include "report/malloc_report.h"
#include "util/text.h"

namespace vmatrace {

const char* top_sort_name(TopSort s) {
  switch (s) {
    case TopSort::kGrowth:
      return "growth";
    case TopSort::kRss:
      return "rss";
    case TopSort::kSize:
      return "size";
  }
  return "?";
}

void TopView::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (!proc || !applied.applied) return;
  if (rec.type == VMAT_EV_FAULT) {
    if (const Vma* v = proc->layout.find(rec.fault.addr)) seen_[rec.hdr.pid].faults[v->id]++;
    return;
  }
  if (rec.type != VMAT_EV_SYSCALL && rec.type != VMAT_EV_EXEC && rec.type != VMAT_EV_FORK && rec.type != VMAT_EV_EXIT)
    return;
  Event& e = events_[next_event_];
  next_event_ = (next_event_ + 1) % events_.size();
  event_count_ = std::min(event_count_ + 1, events_.size());
  e = Event{rec.hdr.ts, rec.hdr.pid, rec.type, 0, 0, 0, 0};
  if (rec.type == VMAT_EV_SYSCALL) {
    e.sys = rec.sys.sys;
    e.ret = rec.sys.ret;
    e.a0 = rec.sys.args[0];
    e.a1 = rec.sys.args[1];
  } else if (rec.type == VMAT_EV_FORK) {
    e.a0 = rec.fork.child_pid;
  }
}

std::vector<uint32_t> TopView::pids() const {
  std::vector<uint32_t> out;
  for (const auto* p : proc_.processes())
    if (p->seeded && !p->exited) out.push_back(p->pid);
  return out;
}

namespace {

std::string kib(uint64_t bytes) { return std::to_string(bytes / 1024) + " KiB"; }

std::string bar(uint64_t part, uint64_t whole, size_t width) {
  size_t n = whole ? static_cast<size_t>(static_cast<double>(part) / static_cast<double>(whole) * width + 0.5) : 0;
  n = std::min(n, width);
  return "[" + std::string(n, '#') + std::string(width - n, '.') + "]";
}

}  // namespace

std::string TopView::frame(uint32_t pid, uint64_t now, size_t width, size_t height, TopSort sort,
                           const MallocReport* malloc, const std::string& status) {
  std::vector<std::string> lines;
  auto add = [&](std::string s) {
    if (s.size() > width) s.resize(width);
    lines.push_back(std::move(s));
  };
  char buf[512];
  std::snprintf(buf, sizeof(buf), "vmatrace top  +%.1fs  %s",
                start_ts_ && now > start_ts_ ? (now - start_ts_) / 1e9 : 0.0, status.c_str());
  add(buf);
  const ProcessState* p = proc_.process(pid);
  if (!p || !p->seeded || p->exited) {
    shown_.clear();
    add("pid " + std::to_string(pid) + (p && p->exited ? ": exited" : ": no layout yet"));
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
  }
  Seen& seen = seen_[pid];
  const double secs = seen.last_frame && now > seen.last_frame ? (now - seen.last_frame) / 1e9 : 0.0;
  static const RssMap kNone;
  const RssMap* map = rss_ ? rss_->map(pid) : nullptr;
  if (!map) map = &kNone;

  struct Row {
    const Vma* v;
    std::string name;
    VmaKind kind;
    Residency res;
    int64_t growth;
    uint64_t faults;
  };
  std::vector<Row> rows;
  std::vector<Vma> vmas = p->layout.vmas();
  const std::string program = pmap_program(p->layout, p->exe);
  struct Kind {
    uint64_t size = 0;
    Residency res;
  };
  std::map<VmaKind, Kind> kinds;
  uint64_t vsz = 0, faults = 0;
  Residency total;
  std::map<uint64_t, uint64_t> rss_now;
  const Vma* prev = nullptr;
  std::string prev_name;
  for (const auto& v : vmas) {
    std::string name = maps_name(p->layout, v);
    const VmaKind k = classify_vma(v, name, program, prev, prev_name);
    const Residency r = vma_residency(*map, v);
    auto was = seen.rss_by_vma.find(v.id);
    const int64_t growth =
        static_cast<int64_t>(r.rss) - static_cast<int64_t>(was == seen.rss_by_vma.end() ? 0 : was->second);
    auto f = seen.faults.find(v.id);
    const uint64_t nf = f == seen.faults.end() ? 0 : f->second;
    rows.push_back({&v, name, k, r, growth, nf});
    rss_now[v.id] = r.rss;
    kinds[k].size += v.end - v.start;
    kinds[k].res += r;
    vsz += v.end - v.start;
    total += r;
    faults += nf;
    prev = &v;
    prev_name = std::move(name);
  }
  // The kernel gate area ([vsyscall]) is no VMA of the process: VSZ counts it
  // as /proc/PID/status VmSize does not.
  for (const auto& v : vmas)
    if (v.special == "[vsyscall]") vsz -= v.end - v.start;
  // The totals are the kernel's own counters where rss_stat tells them;
  // the VMAs' rows (and the sum of them) are what events and scans placed.
  const std::optional<KernelRss> counters = rss_ ? rss_->kernel_counters(pid) : std::nullopt;
  const bool known = counters.has_value();
  const KernelRss k = counters.value_or(KernelRss{});
  std::snprintf(buf, sizeof(buf), "pid %u (%s)  VSZ %s  RSS %s  Anon %s  Swap %s  VMAs %zu  faults/s %.0f", pid,
                escape_text(p->comm).c_str(), kib(vsz).c_str(), kib(known ? k.rss() : total.rss).c_str(),
                kib(known ? k.anon : total.anon).c_str(), kib(known ? k.swap : total.swap).c_str(), vmas.size(),
                secs > 0 ? faults / secs : 0.0);
  add(buf);
  if (known)
    add("  kernel counters (rss_stat): anon " + kib(k.anon) + "  file " + kib(k.file) + "  shmem " + kib(k.shmem) +
        "  swap " + kib(k.swap) + "; placed in VMAs: " + kib(total.rss));
  else if (rss_ && rss_->last_kernel_rss(pid))
    add("  kernel VmRSS at the last scan: " + kib(rss_->last_kernel_rss(pid)));
  add("");
  add("RSS by kind (bar: resident share of the kind's virtual size)");
  for (const auto& [k, t] : kinds) {
    std::snprintf(buf, sizeof(buf), "  %-19s %s RSS %10s of %10s  anon %10s", vma_kind_name(k),
                  bar(t.res.rss, t.size, 20).c_str(), human_size(t.res.rss).c_str(), human_size(t.size).c_str(),
                  human_size(t.res.anon).c_str());
    add(buf);
  }
  add("");
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    switch (sort) {
      case TopSort::kRss:
        return a.res.rss > b.res.rss;
      case TopSort::kSize:
        return a.v->end - a.v->start > b.v->end - b.v->start;
      case TopSort::kGrowth:
        break;
    }
    return a.growth != b.growth ? a.growth > b.growth : a.faults > b.faults;
  });
  add(std::string("VMAs by ") + top_sort_name(sort) + " (growth: RSS change since the previous frame)");
  add("      growth         RSS        size  faults/s  address          perm kind / name");
  // Leave room for malloc sites and events below.
  const size_t used = lines.size();
  const size_t tail = 12;
  const size_t room = height > used + tail ? height - used - tail : std::min<size_t>(5, rows.size());
  shown_.clear();
  first_vma_line_ = used;
  for (size_t i = 0; i < rows.size() && i < room; i++) {
    const Row& r = rows[i];
    shown_.push_back(r.v->start);
    std::string g = (r.growth < 0 ? "-" : "+") + human_size(static_cast<uint64_t>(r.growth < 0 ? -r.growth : r.growth));
    std::snprintf(buf, sizeof(buf), "  %10s  %10s  %10s  %8.0f  %016" PRIx64 " %s %s %s", g.c_str(),
                  human_size(r.res.rss).c_str(), human_size(r.v->end - r.v->start).c_str(),
                  secs > 0 ? r.faults / secs : 0.0, r.v->start, r.v->perms().c_str(), vma_kind_name(r.kind),
                  escape_text(r.name).c_str());
    add(buf);
  }
  if (malloc && malloc->growths()) {
    add("");
    add("malloc call sites that grew memory (bytes grown so far)");
    auto sites = malloc->sites();
    for (size_t i = 0; i < sites.size() && i < 3; i++) {
      std::snprintf(buf, sizeof(buf), "  %10s  %" PRIu64 "x  %s", human_size(sites[i].bytes).c_str(), sites[i].count,
                    escape_text(sites[i].function).c_str());
      add(buf);
    }
  }
  add("");
  add("last events");
  const size_t shown = std::min<size_t>(event_count_, height > lines.size() + 1 ? height - lines.size() : 0);
  for (size_t i = 0; i < shown; i++) {
    const Event& e = events_[(next_event_ + events_.size() - 1 - i) % events_.size()];
    const double t = start_ts_ && e.ts > start_ts_ ? (e.ts - start_ts_) / 1e9 : 0.0;
    if (e.type == VMAT_EV_SYSCALL)
      std::snprintf(buf, sizeof(buf), "  +%.3fs %u %s(%#" PRIx64 ", %" PRIu64 ") = %#" PRIx64, t, e.pid,
                    syscall_name(e.sys), e.a0, e.a1, static_cast<uint64_t>(e.ret));
    else if (e.type == VMAT_EV_FORK)
      std::snprintf(buf, sizeof(buf), "  +%.3fs %u fork -> %" PRIu64, t, e.pid, e.a0);
    else
      std::snprintf(buf, sizeof(buf), "  +%.3fs %u %s", t, e.pid, e.type == VMAT_EV_EXEC ? "exec" : "exit");
    add(buf);
  }
  if (lines.size() > height) lines.resize(height);
  if (first_vma_line_ + shown_.size() > lines.size())
    shown_.resize(lines.size() > first_vma_line_ ? lines.size() - first_vma_line_ : 0);
  seen.rss_by_vma = std::move(rss_now);
  seen.faults.clear();
  seen.last_frame = now;
  std::string out;
  for (auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace vmatrace
