#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cli/commands/commands.h"
#include "core/syscall_names.h"
#include "core/pmap.h"
#include "core/proc_maps.h"
#include "core/records.h"
#include "output/record_dump.h"
#include "record/reader.h"
#include "sym/malloc_tracker.h"
#include "util/errors.h"

namespace vmatrace {
namespace {

// Exit status of a replay of a damaged recording: what could be read was
// printed, but the file did not end cleanly.
constexpr int kExitDamaged = 3;

RecordingReader open_recording(const std::string& path) {
  try {
    return RecordingReader::open(path);
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
}

std::string rel_seconds(uint64_t ts, uint64_t base) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "+%.3fs", ts >= base ? (ts - base) / 1e9 : -((base - ts) / 1e9));
  return buf;
}

// Reports how the stream ended; returns the exit status.
int finish_status(const RecordingReader& r, uint64_t records) {
  const auto& st = r.status();
  // Reading: we stopped early (--at), and everything up to there was intact.
  if (st.state == ReadStatus::State::Clean || st.state == ReadStatus::State::Reading) return 0;
  std::fprintf(stderr, "vmatrace: %s; replayed %" PRIu64 " records up to there\n", st.message.c_str(), records);
  return kExitDamaged;
}

struct Snapshot {
  std::map<uint32_t, Layout> layouts;
  std::map<uint32_t, std::string> names;
  std::map<uint32_t, std::string> exes;  // for --pmap's program text/data
};

Snapshot snapshot(const Processor& p, std::optional<uint32_t> pid) {
  Snapshot s;
  for (const auto* st : p.processes()) {
    if (pid && st->pid != *pid) continue;
    if (!st->seeded) continue;
    s.layouts[st->pid] = st->layout;
    s.names[st->pid] = st->comm;
    s.exes[st->pid] = st->exe;
  }
  return s;
}

std::string vma_line(const Vma& v) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "-%016" PRIx64 " %s %8s", v.start, v.end, v.perms().c_str(),
                human_size(v.end - v.start).c_str());
  std::string s = buf;
  std::string name = v.path.empty() ? v.special : v.path + (v.deleted ? " (deleted)" : "");
  if (!name.empty()) s += " " + escape_text(name);
  return s;
}

void print_diff(const Snapshot& a, const Snapshot& b, const std::string& ta, const std::string& tb) {
  std::set<uint32_t> pids;
  for (const auto& [pid, v] : a.layouts) pids.insert(pid);
  for (const auto& [pid, v] : b.layouts) pids.insert(pid);
  for (uint32_t pid : pids) {
    auto ia = a.layouts.find(pid), ib = b.layouts.find(pid);
    std::printf("# pid %u: layout at %s -> %s\n", pid, ta.c_str(), tb.c_str());
    if (ia == a.layouts.end()) {
      std::printf("  (process appeared)\n");
    }
    if (ib == b.layouts.end()) {
      std::printf("  (process ended)\n");
    }
    std::map<uint64_t, Vma> before, after;
    if (ia != a.layouts.end())
      for (const auto& v : ia->second.vmas()) before[v.id] = v;
    if (ib != b.layouts.end())
      for (const auto& v : ib->second.vmas()) after[v.id] = v;
    uint64_t gained = 0, lost = 0;
    for (const auto& [id, v] : after)
      if (!before.count(id)) std::printf("+ %s\n", vma_line(v).c_str()), gained += v.end - v.start;
    for (const auto& [id, v] : before)
      if (!after.count(id)) std::printf("- %s\n", vma_line(v).c_str()), lost += v.end - v.start;
    for (const auto& [id, v] : after) {
      auto it = before.find(id);
      if (it == before.end()) continue;
      const Vma& o = it->second;
      if (o.start != v.start || o.end != v.end || o.flags != v.flags || o.path != v.path) {
        std::printf("~ %s\n    -> %s\n", vma_line(o).c_str(), vma_line(v).c_str());
        if (v.end - v.start > o.end - o.start) gained += (v.end - v.start) - (o.end - o.start);
        else lost += (o.end - o.start) - (v.end - v.start);
      }
    }
    std::printf("  gained %s, lost %s\n", human_size(gained).c_str(), human_size(lost).c_str());
  }
}

}  // namespace

uint64_t parse_moment(const std::string& s, uint64_t start) {
  auto bad = [&]() -> UserError {
    return UserError("bad moment '" + s + "': use +SECONDS (e.g. +2.5s, +300ms) from the start, or CLOCK_MONOTONIC ns");
  };
  if (s.empty()) throw bad();
  if (s[0] != '+') {
    size_t used = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(s, &used);
    } catch (...) {
      throw bad();
    }
    if (used != s.size()) throw bad();
    return v;
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s.substr(1), &used);
  } catch (...) {
    throw bad();
  }
  std::string unit = s.substr(1 + used);
  double scale = 1e9;
  if (unit == "" || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else throw bad();
  if (!(v >= 0) || !std::isfinite(v)) throw bad();
  return start + static_cast<uint64_t>(std::llround(v * scale));
}

int run_replay(const ReplayOptions& opts) {
  RecordingReader reader = open_recording(opts.path);
  const uint64_t base = reader.header().start_ts;
  PrinterOptions po = opts.print;
  if (opts.since) po.since = parse_moment(*opts.since, base);
  if (opts.until) po.until = parse_moment(*opts.until, base);
  std::optional<uint64_t> at;
  if (opts.at) at = parse_moment(*opts.at, base);
  std::vector<uint64_t> diff;
  for (const auto& d : opts.diff) diff.push_back(parse_moment(d, base));
  if (opts.lineage) return run_lineage(opts);
  if (at && !opts.maps && !opts.pmap && diff.empty())
    throw UserError("--at needs --maps or --pmap (the layout at that moment)");
  if (at && *at < base) throw UserError("--at " + *opts.at + " is before the recording started");
  if (diff.size() == 2 && diff[1] < diff[0]) std::swap(diff[0], diff[1]);

  if (opts.records) {
    uint64_t records = 0;
    while (auto rec = reader.next()) {
      std::string err;
      auto d = decode_record(*rec, &err);
      if (!d) {
        std::printf("malformed record: %s\n", err.c_str());
        continue;
      }
      if (opts.print.pid && d->hdr.pid != *opts.print.pid) continue;
      std::printf("%s\n", dump_record(*d).c_str());
      records++;
    }
    return finish_status(reader, records);
  }
  if (opts.stats) {
    // The replay engine alone: decode and apply, no formatting.
    Processor proc;
    uint64_t records = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (auto rec = reader.next()) {
      std::string err;
      if (auto d = decode_record(*rec, &err)) {
        proc.apply(*d, nullptr);
        records++;
      }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("replayed %" PRIu64 " records in %.3f s: %.2f M records/s applied to the layouts\n", records, s,
                s > 0 ? records / s / 1e6 : 0.0);
    return finish_status(reader, records);
  }
  bool layout_query = at.has_value() || !diff.empty();
  po.events = !layout_query;
  po.maps_at_end = opts.maps && !layout_query;
  po.pmap_at_end = opts.pmap && !layout_query;
  Printer printer(stdout, po);
  Processor proc;
  MallocTracker malloc_tracker(/*live=*/false);
  proc.set_infer_only(opts.infer_vma_changes);
  std::set<uint32_t> pids_seen;
  uint64_t records = 0, last_ts = base;
  std::vector<Snapshot> diff_snaps;
  bool at_done = false;
  Snapshot at_snap;

  while (auto rec = reader.next()) {
    std::string err;
    auto d = decode_record(*rec, &err);
    if (!d) continue;  // malformed record inside an intact chunk: skip it
    records++;
    uint64_t ts = d->hdr.ts;
    if (d->type != VMAT_REC_NOTE) pids_seen.insert(d->hdr.pid);
    // Layout queries: capture the state just before the first record past T.
    if (at && !at_done && ts > *at && d->type != VMAT_REC_NOTE) {
      at_snap = snapshot(proc, po.pid);
      at_done = true;
      break;
    }
    while (diff_snaps.size() < diff.size() && ts > diff[diff_snaps.size()] && d->type != VMAT_REC_NOTE)
      diff_snaps.push_back(snapshot(proc, po.pid));
    if (d->type != VMAT_REC_NOTE) last_ts = std::max<uint64_t>(last_ts, ts);
    if (!layout_query) malloc_tracker.before_apply(*d, proc);
    proc.apply(*d, layout_query ? nullptr : &printer);
    // malloc_growth events: from the raw stacks the recording kept, as live.
    if (!layout_query)
      if (auto g = malloc_tracker.after_apply(*d, proc))
        printer.derived(*d, "malloc_growth", growth_text(*g), growth_json_fields(*g));
  }
  if (po.pid && !pids_seen.count(*po.pid))
    throw UserError("pid " + std::to_string(*po.pid) + " is not in " + opts.path);

  if (at) {
    if (!at_done) {
      if (*at > last_ts && reader.status().state == ReadStatus::State::Clean)
        throw UserError("--at " + *opts.at + " is after the end of the recording (" + rel_seconds(last_ts, base) + ")");
      at_snap = snapshot(proc, po.pid);
    }
    for (const auto& [pid, layout] : at_snap.layouts) {
      if (opts.maps || !opts.pmap) {
        std::printf("# maps of %u (%s) at %s\n", pid, escape_text(at_snap.names[pid]).c_str(),
                    rel_seconds(*at, base).c_str());
        std::fputs(format_proc_maps(layout).c_str(), stdout);
      }
      if (opts.pmap) {
        std::printf("# pmap of %u (%s) at %s\n", pid, escape_text(at_snap.names[pid]).c_str(),
                    rel_seconds(*at, base).c_str());
        std::fputs(pmap_text(layout, at_snap.exes[pid]).c_str(), stdout);
      }
    }
    return finish_status(reader, records);
  }
  if (!diff.empty()) {
    while (diff_snaps.size() < diff.size()) {
      if (diff[diff_snaps.size()] > last_ts && reader.status().state == ReadStatus::State::Clean)
        throw UserError("--diff moment after the end of the recording (" + rel_seconds(last_ts, base) + ")");
      diff_snaps.push_back(snapshot(proc, po.pid));
    }
    print_diff(diff_snaps[0], diff_snaps[1], rel_seconds(diff[0], base), rel_seconds(diff[1], base));
    return finish_status(reader, records);
  }
  proc.finish(&printer);
  printer.flush();
  // The kernel's stores bound some VMA other than the model did: the
  // changes shown there are the kernel's, the layout is the model's.
  // Only for a whole recording: a cut one may end inside a syscall whose
  // stores arrived without it (and stderr then carries the damage, alone).
  if (const auto& st = proc.stats(); st.kernel_disagreements && reader.status().state == ReadStatus::State::Clean)
    std::fprintf(stderr,
                 "vmatrace: kernel view: %" PRIu64 " VMA(s) bound differently by the kernel's %" PRIu64
                 " recorded stores than by the layout model (compare with --infer-vma-changes)\n",
                 st.kernel_disagreements, st.kernel_stores);
  return finish_status(reader, records);
}

int run_info(const std::string& path, bool json) {
  RecordingReader reader = open_recording(path);
  const auto& h = reader.header();
  std::map<std::string, uint64_t> counts;
  std::set<uint32_t> pids;
  std::vector<std::string> objects;  // "dev:ino build-id path"
  uint64_t records = 0, lost = 0, first = 0, last = 0;
  while (auto rec = reader.next()) {
    std::string err;
    auto d = decode_record(*rec, &err);
    if (!d) {
      counts["malformed"]++;
      continue;
    }
    records++;
    if (d->type == VMAT_REC_NOTE) {
      if (d->note->key == "object") objects.push_back(d->note->value);
      continue;
    }
    if (!first) first = d->hdr.ts;
    last = std::max<uint64_t>(last, d->hdr.ts);
    pids.insert(d->hdr.pid);
    switch (d->type) {
      case VMAT_EV_SYSCALL: counts["syscall"]++; break;
      case VMAT_EV_FAULT: counts["fault"]++; break;
      case VMAT_EV_FORK: counts["fork"]++; break;
      case VMAT_EV_EXEC: counts["exec"]++; break;
      case VMAT_EV_EXIT: counts["exit"]++; break;
      case VMAT_EV_VMA_SNAPSHOT: counts["exec_vma"]++; break;
      case VMAT_EV_VMA_KERNEL: counts["vma_store"]++; break;
      case VMAT_REC_LAYOUT: counts["layout"]++; break;
      case VMAT_REC_LOSS: counts["loss"]++; lost += d->loss->lost; break;
      case VMAT_EV_FS: counts["unlink_or_rename"]++; break;
      case VMAT_EV_USER_STACK: counts["user_stack"]++; break;
      case VMAT_REC_FILE_DELETED: counts["file_deleted"]++; break;
      default: counts["unknown"]++; break;
    }
  }
  std::string cmd;
  for (const auto& a : h.command) cmd += (cmd.empty() ? "" : " ") + a;
  double duration = last > h.start_ts ? (last - h.start_ts) / 1e9 : 0;
  const char* state = reader.status().state == ReadStatus::State::Clean ? "clean" : "damaged";
  if (json) {
    std::printf("{\"file\":\"%s\",\"format\":\"%u.%u\",\"vmatrace\":\"%s\",\"kernel\":\"%s\",\"host\":\"%s\","
                "\"boot_id\":\"%s\",\"command\":\"%s\",\"duration_s\":%.6f,\"records\":%" PRIu64
                ",\"processes\":%zu,\"lost\":%" PRIu64 ",\"state\":\"%s\",\"counts\":{",
                escape_json(path).c_str(), h.format_major, h.format_minor, escape_json(h.vmatrace_version).c_str(),
                escape_json(h.kernel_release).c_str(), escape_json(h.hostname).c_str(),
                escape_json(h.boot_id).c_str(), escape_json(cmd).c_str(), duration, records, pids.size(), lost,
                state);
    bool firstc = true;
    for (const auto& [k, v] : counts) std::printf("%s\"%s\":%" PRIu64, firstc ? "" : ",", k.c_str(), v), firstc = false;
    std::printf("},\"attach\":{");
    firstc = true;
    for (const auto& [k, v] : h.attach_modes)
      std::printf("%s\"%s\":\"%s\"", firstc ? "" : ",", escape_json(k).c_str(), escape_json(v).c_str()), firstc = false;
    std::printf("},\"objects\":[");
    for (size_t i = 0; i < objects.size(); i++) std::printf("%s\"%s\"", i ? "," : "", escape_json(objects[i]).c_str());
    std::printf("]}\n");
  } else {
    std::printf("file:      %s\n", escape_text(path).c_str());
    std::printf("format:    %u.%u (vmatrace %s, ABI %u)\n", h.format_major, h.format_minor,
                escape_text(h.vmatrace_version).c_str(), h.abi_version);
    std::printf("kernel:    %s (%s)\n", escape_text(h.kernel_release).c_str(), escape_text(h.machine).c_str());
    std::printf("host:      %s, boot id %s\n", escape_text(h.hostname).c_str(), escape_text(h.boot_id).c_str());
    if (!cmd.empty()) std::printf("command:   %s\n", escape_text(cmd).c_str());
    for (auto p : h.pids) std::printf("pid:       %u\n", p);
    std::string modes;
    for (const auto& [k, v] : h.attach_modes) modes += (modes.empty() ? "" : ", ") + k + "=" + v;
    std::printf("attach:    %s\n", escape_text(modes).c_str());
    std::printf("duration:  %.3f s\n", duration);
    std::printf("records:   %" PRIu64 " in %zu chunks, %zu processes\n", records, reader.chunks().size(), pids.size());
    std::string c;
    for (const auto& [k, v] : counts) c += (c.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    std::printf("events:    %s\n", c.c_str());
    std::printf("lost:      %" PRIu64 "\n", lost);
    std::printf("objects:   %zu mapped files (dev:ino build-id path)\n", objects.size());
    for (const auto& o : objects) std::printf("           %s\n", escape_text(o).c_str());
    std::printf("state:     %s\n", state);
  }
  return finish_status(reader, records);
}

}  // namespace vmatrace
