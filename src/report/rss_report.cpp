#include "report/rss_report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/pmap.h"
#include "core/proc_maps.h"
#include "report/malloc_report.h"
#include "util/interval_map.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPageMask = ~(kPageSize - 1);
uint64_t page_up(uint64_t a) { return (a + kPageSize - 1) & kPageMask; }

std::string signed_size(int64_t v) { return (v < 0 ? "-" : "+") + human_size(static_cast<uint64_t>(v < 0 ? -v : v)); }

}  // namespace

void RssReport::Labels::set(uint64_t start, uint64_t end, uint32_t label) {
  if (start >= end) return;
  auto next = carve_out(ranges, start, end, [](std::pair<uint64_t, uint32_t>& r) -> uint64_t& { return r.first; });
  ranges.emplace_hint(next, start, std::make_pair(end, label));
}

uint32_t RssReport::label_id(const std::string& s) {
  auto [it, fresh] = label_ids_.emplace(s, static_cast<uint32_t>(label_names_.size()));
  if (fresh) label_names_.push_back(s);
  return it->second;
}

void RssReport::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (!proc || !applied.applied) return;
  if (rec.type == VMAT_EV_EXEC) {
    labels_.erase(rec.hdr.pid);
    return;
  }
  if (rec.type == VMAT_EV_FORK && !(rec.fork.flags & VMAT_FORK_THREAD)) {
    auto it = labels_.find(rec.hdr.pid);
    if (it != labels_.end()) labels_[rec.fork.child_pid] = it->second;
    return;
  }
  if (rec.type != VMAT_EV_SYSCALL) return;
  const auto& s = rec.sys;
  if (s.ret < 0 && s.ret > -4096) return;
  const auto ret = static_cast<uint64_t>(s.ret);
  auto& labels = labels_[rec.hdr.pid];
  switch (s.sys) {
    case VMAT_SYS_MMAP: {
      const Vma* v = proc->layout.find(ret);
      std::string name = v ? maps_name(proc->layout, *v) : "";
      labels.set(ret, ret + page_up(s.args[1]), label_id(name.empty() ? "mmap (anonymous)" : "mmap " + name));
      break;
    }
    case VMAT_SYS_BRK:
      if (proc->layout.start_brk() && ret > proc->layout.start_brk())
        labels.set(page_up(proc->layout.start_brk()), page_up(ret), label_id("brk"));
      break;
    case VMAT_SYS_MREMAP:
      labels.set(ret, ret + page_up(s.args[2]), label_id("mremap"));
      break;
    case VMAT_SYS_SHMAT:
      if (const Vma* v = proc->layout.find(ret)) labels.set(v->start, v->end, label_id("shmat"));
      break;
    default:
      break;
  }
}

void RssReport::on_growth(const MallocGrowth& g) {
  if (!g.bytes) return;
  labels_[g.pid].set(g.addr & kPageMask, page_up(g.addr + g.bytes),
                     label_id("malloc: " + call_site_label(g) + " via " + g.via));
}

RssReport::Snap RssReport::take(const ProcessState& p, uint64_t ts) const {
  Snap s;
  s.ts = ts;
  s.comm = p.comm;
  s.exe = p.exe;
  s.layout = p.layout;
  if (const RssMap* m = model_.map(p.pid)) s.rss = *m;
  s.kernel = model_.kernel_counters(p.pid);
  auto it = labels_.find(p.pid);
  if (it != labels_.end()) s.labels = it->second;
  return s;
}

void RssReport::on_process_end(const ProcessState& p) {
  if (after_taken_ || (opts_.since && !before_taken_) || !p.seeded || (opts_.pid && p.pid != *opts_.pid)) return;
  after_[p.pid] = take(p, 0);
}

void RssReport::snapshot_before(const Processor& proc, uint64_t ts) {
  for (const auto* p : proc.processes())
    if (p->seeded && !p->exited && (!opts_.pid || p->pid == *opts_.pid)) before_[p->pid] = take(*p, ts);
  before_taken_ = true;
}

void RssReport::snapshot_after(const Processor& proc, uint64_t ts) {
  for (const auto* p : proc.processes())
    if (p->seeded && !p->exited && (!opts_.pid || p->pid == *opts_.pid)) after_[p->pid] = take(*p, ts);
  after_taken_ = true;
}

std::vector<RssReport::ProcResult> RssReport::results() const {
  std::vector<ProcResult> out;
  static const RssMap kNothing;
  for (const auto& entry : after_) {
    const auto pid = entry.first;
    const auto& a = entry.second;  // not a structured binding: lambdas below capture it (clang 14)
    auto bi = before_.find(pid);
    const RssMap& before = bi == before_.end() ? kNothing : bi->second.rss;
    ProcResult r;
    r.pid = pid;
    r.comm = a.comm;
    r.t0 = bi == before_.end() ? 0 : bi->second.ts;
    r.t1 = a.ts;
    if (bi != before_.end())
      bi->second.layout.for_each_vma([&](const Vma& v) { r.rss_before += vma_residency(bi->second.rss, v).rss; });
    r.kernel_after = a.kernel;
    r.kernel_before = bi == before_.end() ? std::optional<KernelRss>(KernelRss{}) : bi->second.kernel;
    std::map<std::string, Row> kinds, sites;
    const std::string program = pmap_program(a.layout, a.exe);
    const Vma* prev = nullptr;
    std::string prev_name;
    auto vmas = a.layout.vmas();
    for (const auto& v : vmas) {
      const std::string name = maps_name(a.layout, v);
      const VmaKind k = classify_vma(v, name, program, prev, prev_name);
      const Residency now = vma_residency(a.rss, v);
      const uint64_t was = (v.flags & (VM_PFNMAP | VM_IO | VM_HUGETLB)) ? 0 : before.sum(v.start, v.end).rss;
      r.rss_after += now.rss;
      r.anon_after += now.anon;
      r.swap_after += now.swap;
      const int64_t growth = static_cast<int64_t>(now.rss) - static_cast<int64_t>(was);
      char range[64];
      std::snprintf(range, sizeof(range), "%012" PRIx64 "-%012" PRIx64 " %s", v.start, v.end, v.perms().c_str());
      r.vmas.push_back(
          {std::string(range) + " " + vma_kind_name(k) + (name.empty() ? "" : " " + name), growth, was, now.rss});
      Row& kr = kinds[vma_kind_name(k)];
      kr.what = vma_kind_name(k);
      kr.growth += growth, kr.before += was, kr.after += now.rss;
      // By creator: the labelled pieces of v, the rest as the kind and name.
      auto credit = [&](const std::string& what, uint64_t s, uint64_t e) {
        if (s >= e) return;
        const uint64_t n = (v.flags & (VM_PFNMAP | VM_IO | VM_HUGETLB)) ? 0 : a.rss.sum(s, e).rss;
        const uint64_t b = (v.flags & (VM_PFNMAP | VM_IO | VM_HUGETLB)) ? 0 : before.sum(s, e).rss;
        Row& sr = sites[what];
        sr.what = what;
        sr.growth += static_cast<int64_t>(n) - static_cast<int64_t>(b), sr.before += b, sr.after += n;
      };
      const std::string unlabelled = std::string("(before the trace) ") + (name.empty() ? vma_kind_name(k) : name);
      uint64_t at = v.start;
      auto it = a.labels.ranges.upper_bound(v.start);
      if (it != a.labels.ranges.begin() && std::prev(it)->second.first > v.start) --it;
      for (; it != a.labels.ranges.end() && it->first < v.end; ++it) {
        const uint64_t s = std::max(it->first, v.start), e = std::min(it->second.first, v.end);
        credit(unlabelled, at, s);
        credit(label_names_[it->second.second], s, e);
        at = e;
      }
      credit(unlabelled, at, v.end);
      prev = &v;
      prev_name = name;
    }
    auto ranked = [&](std::map<std::string, Row>& m) {
      std::vector<Row> rows;
      for (auto& [k, row] : m) rows.push_back(row);
      return rows;
    };
    r.placed_after = r.rss_after;
    if (r.kernel_before && r.kernel_after) {
      r.rss_before = r.kernel_before->rss();
      r.rss_after = r.kernel_after->rss();
      r.anon_after = r.kernel_after->anon;
      r.swap_after = r.kernel_after->swap;
    }
    r.kinds = ranked(kinds);
    r.sites = ranked(sites);
    for (auto* rows : {&r.kinds, &r.vmas, &r.sites}) {
      std::stable_sort(rows->begin(), rows->end(), [](const Row& x, const Row& y) { return x.growth > y.growth; });
      if (opts_.top && rows->size() > opts_.top) rows->resize(opts_.top);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string RssReport::text(uint64_t base_ts) const {
  std::string out;
  char buf[512];
  auto when = [&](uint64_t ts, const char* none) -> std::string {
    if (!ts) return none;
    std::snprintf(buf, sizeof(buf), "+%.3fs", ts >= base_ts ? (ts - base_ts) / 1e9 : 0.0);
    return buf;
  };
  for (const auto& r : results()) {
    const int64_t total = static_cast<int64_t>(r.rss_after) - static_cast<int64_t>(r.rss_before);
    out += "RSS of " + std::to_string(r.pid) + " (" + escape_text(r.comm) + ") from " + when(r.t0, "its start") +
           " to " + when(r.t1, "its end") + ": " + human_size(r.rss_before) + " -> " + human_size(r.rss_after) + " (" +
           signed_size(total) + "; now " + human_size(r.anon_after) + " anonymous, " + human_size(r.swap_after) +
           " swapped)\n";
    if (r.kernel_before && r.kernel_after) {
      const KernelRss &k0 = *r.kernel_before, &k1 = *r.kernel_after;
      out += "  kernel counters (rss_stat): anon " + human_size(k0.anon) + " -> " + human_size(k1.anon) + ", file " +
             human_size(k0.file) + " -> " + human_size(k1.file) + ", shmem " + human_size(k0.shmem) + " -> " +
             human_size(k1.shmem) + ", swap " + human_size(k0.swap) + " -> " + human_size(k1.swap) +
             "; placed in VMAs at the end: " + human_size(r.placed_after) + "\n";
    }
    auto table = [&](const char* title, const std::vector<Row>& rows) {
      out += std::string("  ") + title + ":\n";
      for (const auto& row : rows) {
        std::snprintf(buf, sizeof(buf), "    %12s  %10s -> %-10s  ", signed_size(row.growth).c_str(),
                      human_size(row.before).c_str(), human_size(row.after).c_str());
        out += buf + escape_text(row.what) + "\n";
      }
    };
    table("growth by kind", r.kinds);
    table("VMAs by resident growth", r.vmas);
    table("growth by what created the memory (malloc call site or syscall)", r.sites);
  }
  if (out.empty()) out = "no process with a known layout in the interval\n";
  return out;
}

std::string RssReport::json() const {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("processes").begin_array();
  for (const auto& r : results()) {
    w.begin_object().kv("pid", r.pid).kv("comm", r.comm).kv("from_ts", r.t0).kv("to_ts", r.t1);
    w.kv("rss_before", r.rss_before).kv("rss_after", r.rss_after).kv("anon_after", r.anon_after);
    w.kv("swap_after", r.swap_after).kv("placed_after", r.placed_after);
    auto kernel = [&](const char* key, const std::optional<KernelRss>& k) {
      if (!k) return;
      w.key(key).begin_object().kv("anon", k->anon).kv("file", k->file).kv("shmem", k->shmem).kv("swap", k->swap);
      w.end_object();
    };
    kernel("kernel_before", r.kernel_before);
    kernel("kernel_after", r.kernel_after);
    auto rows = [&](const char* key, const std::vector<Row>& v) {
      w.key(key).begin_array();
      for (const auto& row : v)
        w.begin_object()
            .kv("what", row.what)
            .kv("growth", row.growth)
            .kv("before", row.before)
            .kv("after", row.after)
            .end_object();
      w.end_array();
    };
    rows("kinds", r.kinds);
    rows("vmas", r.vmas);
    rows("sites", r.sites);
    w.end_object();
  }
  w.end_array().end_object();
  return out;
}

}  // namespace vmatrace
