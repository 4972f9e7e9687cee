// `vmatrace replay FILE`: the recording through the same Pipeline live
// tracing ran, printing what it printed; or the layouts at a moment (--at,
// --diff), the records as stored (--records), the replay rate (--stats).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "cli/commands/commands.h"
#include "core/loss_windows.h"
#include "core/pmap.h"
#include "core/proc_maps.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "output/record_dump.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "sym/debuginfo.h"
#include "sym/line_cache.h"
#include "util/errors.h"
#include "util/time.h"

namespace vmatrace {
namespace {

std::string rel_seconds(uint64_t ts, uint64_t base, int decimals = 3) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "+%.*fs", decimals, ts >= base ? (ts - base) / 1e9 : -((base - ts) / 1e9));
  return buf;
}

struct Snapshot {
  std::map<uint32_t, Layout> layouts;
  std::map<uint32_t, RssMap> rss;                       // --rss
  std::map<uint32_t, uint64_t> kernel_rss;              // --rss: VmRSS at the last scan
  std::map<uint32_t, std::optional<KernelRss>> kernel;  // --rss: the kernel's counters (rss_stat)
  std::map<uint32_t, std::string> names;
  std::map<uint32_t, std::string> exes;  // for --pmap's program text/data
};

Snapshot snapshot(const Processor& p, std::optional<uint32_t> pid, const RssModel* rss = nullptr) {
  Snapshot s;
  for (const auto* st : p.processes()) {
    if (pid && st->pid != *pid) continue;
    if (!st->seeded) continue;
    s.layouts[st->pid] = st->layout;
    if (rss) {
      if (const RssMap* m = rss->map(st->pid)) s.rss[st->pid] = *m;
      s.kernel_rss[st->pid] = rss->last_kernel_rss(st->pid);
      s.kernel[st->pid] = rss->kernel_counters(st->pid);
    }
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
  std::string name = v.path.empty() ? v.special.str() : v.path + (v.deleted ? " (deleted)" : "");
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
        if (v.end - v.start > o.end - o.start)
          gained += (v.end - v.start) - (o.end - o.start);
        else
          lost += (o.end - o.start) - (v.end - v.start);
      }
    }
    std::printf("  gained %s, lost %s\n", human_size(gained).c_str(), human_size(lost).c_str());
  }
}

// A loss is written when found, after the moments it spoils: past the
// moment asked for, read on for the loss and layout records (the others by
// their header only).
void read_loss_records(RecordingReader& reader, LossWindows& windows) {
  std::string err;
  while (auto rec = reader.next()) {
    vmat_hdr h;
    std::memcpy(&h, rec->data(), sizeof(h));
    if (!LossWindows::wanted(h.type)) continue;
    if (auto d = decode_record(*rec, &err)) windows.add(*d);
  }
}

// Says on stderr which of the pids' layouts at ts are not exact (records
// the kernel dropped around then); true when any.
bool report_inexact(const LossWindows& windows, const std::set<uint32_t>& pids, uint64_t ts, uint64_t base) {
  bool any = false;
  for (uint32_t pid : pids) {
    auto w = windows.at(pid, ts);
    if (!w) continue;
    any = true;
    std::string until = w->until == LossWindows::kOpen
                            ? "it was not read again (the loss was found at its end)"
                            : "its layout was read again at " + rel_seconds(w->until, base, 6);
    std::fprintf(stderr,
                 "vmatrace: pid %u's layout at %s is not exact: the kernel dropped %" PRIu64
                 " of its records after %s and %s; record with a larger --ringbuf-size\n",
                 pid, rel_seconds(ts, base, 6).c_str(), w->lost, rel_seconds(w->from, base, 6).c_str(), until.c_str());
  }
  return any;
}

}  // namespace

int replayed_status(const RecordingReader& reader, uint64_t records) {
  return damage_status(reader, "replayed " + std::to_string(records) + " records up to there");
}

// The trailer's end_ts (CLOCK_MONOTONIC ns when tracing stopped), or 0 for
// a recording without one (older writers; a value that does not parse).
uint64_t trailer_end_ts(const RecordingReader& reader) {
  auto it = reader.trailer().find("end_ts");
  if (it == reader.trailer().end()) return 0;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return ec == std::errc() && end == it->second.data() + it->second.size() ? v : 0;
}

int run_replay(const ReplayOptions& opts) {
  RecordingReader reader = open_recording(opts.path);
  const uint64_t base = time_origin(opts.path);
  PrinterOptions po = opts.print;
  if (opts.since) po.since = parse_moment(*opts.since, base);
  if (opts.until) po.until = parse_moment(*opts.until, base);
  std::optional<uint64_t> at;
  if (opts.at) at = parse_moment(*opts.at, base);
  std::vector<uint64_t> diff;
  for (const auto& d : opts.diff) diff.push_back(parse_moment(d, base));
  if (opts.lineage) return run_lineage(opts);
  if (opts.top) {
    if (opts.maps || opts.pmap || at || !diff.empty() || opts.records || opts.stats || opts.since || opts.until)
      throw UserError(
          "--top plays the whole recording in the live view: leave out --maps, --pmap, --at, --diff, "
          "--since, --until, --records and --stats");
    return run_replay_top(opts);
  }
  if (opts.speed != 1.0 || opts.top_batch)
    throw UserError("--speed and --batch go with --top (replay FILE --top --speed 4)");
  if (at && !opts.maps && !opts.pmap && diff.empty())
    throw UserError("--at needs --maps or --pmap (the layout at that moment)");
  if (opts.rss && (!opts.pmap || !at)) throw UserError("--rss needs --pmap --at T (the residency at that moment)");
  if (at && *at < reader.header().start_ts) throw UserError("--at " + *opts.at + " is before the recording started");
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
    return replayed_status(reader, records);
  }
  if (opts.stats) {
    // The replay engine alone: decode and apply, no formatting.
    Pipeline pipeline;
    auto t0 = std::chrono::steady_clock::now();
    uint64_t records = pipeline.run(reader);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("replayed %" PRIu64 " records in %.3f s: %.2f M records/s applied to the layouts\n", records, s,
                s > 0 ? records / s / 1e6 : 0.0);
    return replayed_status(reader, records);
  }
  bool layout_query = at.has_value() || !diff.empty();
  po.events = !layout_query;
  po.maps_at_end = opts.maps && !layout_query;
  po.pmap_at_end = opts.pmap && !layout_query;
  Printer printer(stdout, po);
  Pipeline pipeline;
  const Processor& proc = pipeline.processor();
  pipeline.processor().set_infer_only(opts.infer_vma_changes);
  if (opts.rss) pipeline.enable_rss();
  bool rss_recorded = false;
  if (po.pid) {
    // The other processes' models are not needed: only the pid's and its
    // ancestors' (a fork copies the parent's layout).
    RecordingReader forks = open_recording(opts.path);
    pipeline.only_pids(pid_and_ancestors(forks, *po.pid));
  }
  if (!layout_query) {
    pipeline.add_sink(&printer);
    // malloc_growth events: from the raw stacks the recording kept, as live.
    enable_recorded_malloc(pipeline, opts.path, opts.symbols, /*all_source_lines=*/po.format == OutputFormat::kJson);
    pipeline.on_malloc_growth(print_growth(printer));
  }
  std::set<uint32_t> pids_seen;
  uint64_t last_ts = base;
  std::vector<Snapshot> diff_snaps;
  bool at_done = false;
  Snapshot at_snap;
  // --at with --pid: when the process lost its layout before T, or got its
  // first one after T, to say why there is none at T.
  std::optional<uint64_t> pid_layout_ended, pid_seeded_after;
  bool pid_was_seeded = false;
  uint64_t prev_ts = base;
  LossWindows loss_windows;
  auto pid_seeded = [&] {
    const ProcessState* st = po.pid ? proc.process(*po.pid) : nullptr;
    return st && st->seeded;
  };

  // A moment asked for: start at the recording's last checkpoint before it
  // rather than at its first record (the state there is the one a replay
  // from the start reaches). --rss needs the residency model, which
  // checkpoints do not keep; --infer-vma-changes a Processor that ignored
  // the kernel's stores all along.
  uint64_t records_before = 0;
  if (layout_query && !opts.rss && !opts.infer_vma_changes) {
    const uint64_t from = at ? *at : std::min(diff.front(), diff.back());
    // --pid: a state where the process has its layout, so that what the
    // records before say of it (it was seen, and known) is known.
    std::function<bool(const Processor&)> accept;
    if (po.pid)
      accept = [pid = *po.pid](const Processor& p) {
        const ProcessState* st = p.process(pid);
        return st && st->seeded;
      };
    Checkpoint::Restored restored;
    if (start_at_checkpoint(reader, pipeline, from, restored, accept)) {
      loss_windows = std::move(restored.windows);
      last_ts = std::max(last_ts, restored.last_ts);
      records_before = restored.records;
      if (po.pid) {
        pids_seen.insert(*po.pid);
        pid_was_seeded = true;
      }
    }
  }
  const uint64_t records = records_before + pipeline.run(reader, [&](const DecodedRecord& d) {
    uint64_t ts = d.hdr.ts;
    if (layout_query && LossWindows::wanted(d.type)) loss_windows.add(d);
    if (d.type == VMAT_REC_NOTE && d.note->key == "rss.source") rss_recorded = true;
    if (d.type != VMAT_REC_NOTE) pids_seen.insert(d.hdr.pid);
    // A forked child is in the file from its fork on (its first layout is
    // the parent's copy, before any record of its own).
    if (d.type == VMAT_EV_FORK && !(d.fork.flags & VMAT_FORK_THREAD)) pids_seen.insert(d.fork.child_pid);
    // Layout queries: capture the state just before the first record past T.
    if (at && !at_done && ts > *at && d.type != VMAT_REC_NOTE) {
      at_snap = snapshot(proc, po.pid, pipeline.rss());
      at_done = true;
      // A process with no layout at T: read on to where it gets one.
      if (!po.pid || at_snap.layouts.count(*po.pid)) return false;
    }
    if (at && po.pid && d.type != VMAT_REC_NOTE) {
      // The state the records up to the previous one (at prev_ts) made.
      const bool seeded = pid_seeded();
      if (at_done && seeded) {
        pid_seeded_after = prev_ts;
        return false;
      }
      if (!at_done && pid_was_seeded && !seeded) pid_layout_ended = prev_ts;
      pid_was_seeded = seeded;
      prev_ts = ts;
    }
    while (diff_snaps.size() < diff.size() && ts > diff[diff_snaps.size()] && d.type != VMAT_REC_NOTE)
      diff_snaps.push_back(snapshot(proc, po.pid));
    if (d.type != VMAT_REC_NOTE) last_ts = std::max<uint64_t>(last_ts, ts);
    return true;
  });
  if (po.pid && !pids_seen.count(*po.pid))
    throw UserError("pid " + std::to_string(*po.pid) + " is not in " + opts.path);
  if (layout_query) {
    // A whole recording whose trailer counts no loss has no loss record
    // to read on for (its trailer read from the file's end).
    const auto trailer = RecordingReader::peek_trailer(opts.path);
    const bool lossless = trailer && trailer->count("lost") && trailer->at("lost") == "0";
    if (!lossless) read_loss_records(reader, loss_windows);
  }
  auto pids_of = [](const Snapshot& snap) {
    std::set<uint32_t> pids;
    for (const auto& [pid, layout] : snap.layouts) pids.insert(pid);
    return pids;
  };

  if (at) {
    if (!at_done) {
      // The recording covers up to its trailer's end_ts (when tracing
      // stopped), which may be well after the last record of a quiet process.
      const uint64_t end_ts = std::max(last_ts, trailer_end_ts(reader));
      if (*at > end_ts && reader.status().state == ReadStatus::State::Clean)
        throw UserError("--at " + *opts.at + " is after the end of the recording (" + rel_seconds(end_ts, base) + ")");
      at_snap = snapshot(proc, po.pid, pipeline.rss());
    }
    if (opts.rss && !rss_recorded)
      throw UserError(opts.path + " was recorded without --rss: record with `vmatrace record --rss` to see residency");
    if (po.pid && !at_snap.layouts.count(*po.pid)) {
      if (at_done && !pid_seeded_after && pid_seeded()) pid_seeded_after = last_ts;
      std::string why = pid_seeded_after   ? "its first layout is at " + rel_seconds(*pid_seeded_after, base, 6)
                        : pid_layout_ended ? "its layout ended at " + rel_seconds(*pid_layout_ended, base, 6) +
                                                 " (exit, or it became unknown)"
                                           : "it has none in the recording";
      throw UserError("pid " + std::to_string(*po.pid) + " has no layout " + (pid_layout_ended ? "" : "yet ") + "at " +
                      rel_seconds(*at, base) + " in " + opts.path + ": " + why);
    }
    for (const auto& [pid, layout] : at_snap.layouts) {
      if (opts.maps || !opts.pmap) {
        std::printf("# maps of %u (%s) at %s\n", pid, escape_text(at_snap.names[pid]).c_str(),
                    rel_seconds(*at, base).c_str());
        std::fputs(format_proc_maps(layout).c_str(), stdout);
      }
      if (opts.rss && po.format == OutputFormat::kJson) {
        std::printf("%s\n", pmap_rss_json(pid, at_snap.names[pid], *at, layout, at_snap.exes[pid], at_snap.rss[pid],
                                          at_snap.kernel_rss[pid], at_snap.kernel[pid])
                                .c_str());
      } else if (opts.pmap) {
        std::printf("# pmap of %u (%s) at %s\n", pid, escape_text(at_snap.names[pid]).c_str(),
                    rel_seconds(*at, base).c_str());
        std::fputs(pmap_text(layout, at_snap.exes[pid], opts.rss ? &at_snap.rss[pid] : nullptr).c_str(), stdout);
      }
    }
    std::fflush(stdout);
    const bool inexact = report_inexact(loss_windows, pids_of(at_snap), *at, base);
    return std::max(replayed_status(reader, records), inexact ? 3 : 0);
  }
  if (!diff.empty()) {
    while (diff_snaps.size() < diff.size()) {
      if (diff[diff_snaps.size()] > last_ts && reader.status().state == ReadStatus::State::Clean)
        throw UserError("--diff moment after the end of the recording (" + rel_seconds(last_ts, base) + ")");
      diff_snaps.push_back(snapshot(proc, po.pid));
    }
    print_diff(diff_snaps[0], diff_snaps[1], rel_seconds(diff[0], base), rel_seconds(diff[1], base));
    std::fflush(stdout);
    bool inexact = report_inexact(loss_windows, pids_of(diff_snaps[0]), diff[0], base);
    inexact = report_inexact(loss_windows, pids_of(diff_snaps[1]), diff[1], base) || inexact;
    return std::max(replayed_status(reader, records), inexact ? 3 : 0);
  }
  pipeline.finish();
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
  return replayed_status(reader, records);
}

namespace {

struct ReplayArgs {
  ReplayOptions ro;
  bool json = false;
  int pid = 0;
};

}  // namespace

void add_symbol_options(CLI::App* sub, SymbolSources& symbols) {
  symbols.line_cache_dir = LineCache::default_dir();
  sub->add_option("--debug-dir", symbols.debug_dirs,
                  "look up binaries' debug files by build id under this directory (DIR/.build-id/xx/yyyy.debug); "
                  "repeatable")
      ->check(CLI::ExistingDirectory);
  sub->add_flag("--debuginfod", symbols.debuginfod,
                "ask the DEBUGINFOD_URLS servers for debug files not found locally (5 s wait per server unless "
                "DEBUGINFOD_TIMEOUT says; off by default: nothing leaves the machine)");
}

Command add_replay_command(CLI::App& app) {
  auto a = std::make_shared<ReplayArgs>();
  ReplayOptions& ro = a->ro;
  auto* replay = app.add_subcommand("replay", "print a recording as live tracing did; layouts at any moment");
  replay->add_option("file", ro.path, "recording")->required();
  replay->add_flag("--json", a->json, "one JSON object per event");
  replay->add_option("--pid", a->pid, "only this process");
  replay->add_flag("--maps", ro.maps, "print layouts (at the end, or --at T)");
  replay->add_flag("--pmap", ro.pmap, "pmap-style layouts with kinds, kernel flags and totals (at the end, or --at T)");
  replay->add_flag("--rss", ro.rss,
                   "with --pmap --at T: Rss, Anonymous and Swap per VMA and totals, as pmap -X (a recording made "
                   "with --rss; --json: one object per process with a vmas array)");
  replay->add_option("--lineage", ro.lineage, "history of the VMA covering ADDR (at the end, or --at T)");
  replay->add_flag("--stats", ro.stats, "apply every record to the layouts, print only counts and the rate");
  replay->add_flag("--records", ro.records,
                   "print every record as stored, one line each (the kernel's VMA stores included)");
  replay->add_option("--at", ro.at, "moment for --maps: +2.5s from the start, or CLOCK_MONOTONIC ns");
  replay->add_option("--since", ro.since, "print events from this moment");
  replay->add_option("--until", ro.until, "print events up to this moment");
  replay->add_option("--diff", ro.diff, "compare layouts at two moments")->expected(2);
  replay->add_flag("--top", ro.top,
                   "play the recording back in top's full-screen view (keys as in top; p pauses the playback)");
  replay->add_option("--speed", ro.speed, "with --top: play at X times the recorded speed (default 1)");
  replay->add_option("--refresh", ro.top_refresh, "with --top: time between frames (default 500ms)");
  replay->add_flag("--batch", ro.top_batch, "with --top: print plain-text frames to stdout instead");
  replay->add_option("--frames", ro.top_frames, "with --top --batch: how many frames (default 1)")
      ->check(CLI::PositiveNumber);
  replay->add_option("--width", ro.top_width, "with --top --batch: columns per frame (default 160)");
  replay->add_option("--height", ro.top_height, "with --top --batch: lines per frame (default 50)");
  replay->add_flag("--infer-vma-changes", ro.infer_vma_changes,
                   "derive VMA changes from the syscalls alone, ignoring the kernel's recorded VMA stores");
  add_symbol_options(replay, ro.symbols);
  return {replay, [a] {
            if (a->ro.symbols.debuginfod) bound_debuginfod_wait();
            a->ro.print.format = a->json ? OutputFormat::kJson : OutputFormat::kText;
            if (a->pid) a->ro.print.pid = static_cast<uint32_t>(a->pid);
            return run_replay(a->ro);
          }};
}

}  // namespace vmatrace
