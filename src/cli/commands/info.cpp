// `vmatrace info FILE`: what a recording holds (kernel, host, command,
// duration, counts, losses, mapped objects) and whether it is intact.
#include <CLI/CLI.hpp>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "cli/commands/commands.h"
#include "core/records.h"
#include "pipeline/recording.h"
#include "report/loss_log.h"
#include "util/errors.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

int run_info(const std::string& path, bool json, bool privacy) {
  RecordingReader reader = open_recording(path);
  const auto& h = reader.header();
  std::map<std::string, uint64_t> counts;
  std::set<uint32_t> pids;
  std::vector<std::string> objects;  // "dev:ino build-id path"
  uint64_t records = 0, lost = 0, first = 0, last = 0;
  uint64_t unread = 0;                    // of lost: left in the ring when tracing stopped
  uint64_t stacks = 0, stack_bytes = 0;   // raw user stack memory (--keep-stack-bytes, older recordings)
  uint64_t frame_stacks = 0, frames = 0;  // user stacks kept as unwound frames (the default)
  uint64_t jit_names = 0;                 // names of JIT code (jit_map records: perf maps, jitdumps)
  std::set<std::string> paths;            // every file path the records name
  std::map<uint32_t, std::string> comms;  // pid -> its (last) command name
  LossLog losses;                         // where records were lost
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
    if (privacy) {
      comms[d->hdr.pid] = std::string(d->comm);
      if (!d->path.empty() && d->path.front() != '[') paths.emplace(d->path);
      if (d->layout)
        for (const auto& v : d->layout->vmas)
          if (!v.path.empty()) paths.insert(v.path);
      if (d->file_deleted) paths.insert(d->file_deleted->path);
      if (d->host_path) paths.insert(d->host_path->host_path);
    }
    switch (d->type) {
      case VMAT_EV_SYSCALL:
        counts["syscall"]++;
        if (!d->stores.empty()) counts["vma_store"] += d->stores.size();  // carried by the syscall's record
        break;
      case VMAT_EV_FAULT:
        counts["fault"]++;
        break;
      case VMAT_EV_FORK:
        counts["fork"]++;
        break;
      case VMAT_EV_EXEC:
        counts["exec"]++;
        break;
      case VMAT_EV_EXIT:
        counts["exit"]++;
        break;
      case VMAT_EV_VMA_SNAPSHOT:
        counts["exec_vma"]++;
        break;
      case VMAT_EV_VMA_KERNEL:
        counts["vma_store"]++;
        break;
      case VMAT_REC_LAYOUT:
        counts["layout"]++;
        break;
      case VMAT_REC_LOSS:
        counts["loss"]++;
        lost += d->loss->lost;
        if (d->loss->unread) unread += d->loss->lost;
        losses.add(*d);
        break;
      case VMAT_EV_FS:
        counts["unlink_or_rename"]++;
        break;
      case VMAT_EV_USER_STACK:
        counts["user_stack"]++;
        stacks++;
        stack_bytes += d->stack.size();
        break;
      case VMAT_REC_STACK_FRAMES:
        counts["user_stack"]++;  // a user stack, kept as its frames
        frame_stacks++;
        frames += d->frames.nframes;
        break;
      case VMAT_REC_FILE_DELETED:
        counts["file_deleted"]++;
        break;
      case VMAT_REC_HOST_PATH:
        counts["host_path"]++;
        break;
      case VMAT_EV_NS_IDS:
      case VMAT_REC_NS_IDS:
        counts["ns_ids"]++;
        break;
      case VMAT_EV_RSS_STAT:
        counts["rss_stat"]++;
        break;
      case VMAT_REC_JIT_MAP:
        counts["jit_map"]++;
        if (d->jit_map) jit_names += d->jit_map->code.size();
        break;
      default:
        counts["unknown"]++;
        break;
    }
  }
  std::optional<uint64_t> lost_in_kernel;
  if (auto it = reader.trailer().find("lost_in_kernel"); it != reader.trailer().end())
    lost_in_kernel = std::strtoull(it->second.c_str(), nullptr, 10);
  std::string cmd;
  for (const auto& a : h.command) cmd += (cmd.empty() ? "" : " ") + a;
  double duration = last > h.start_ts ? (last - h.start_ts) / 1e9 : 0;
  const char* state = reader.status().state == ReadStatus::State::Clean ? "clean" : "damaged";
  if (privacy) {
    // What the file would tell whoever it is shared with, besides addresses,
    // sizes, protections and timings (docs/recording-format.md).
    std::printf("file:        %s\n", escape_text(path).c_str());
    std::printf("host:        %s, boot id %s, kernel %s (%s)\n", escape_text(h.hostname).c_str(),
                escape_text(h.boot_id).c_str(), escape_text(h.kernel_release).c_str(), escape_text(h.machine).c_str());
    std::printf("command:     %s\n", cmd.empty() ? "none (attached with -p)" : escape_text(cmd).c_str());
    std::printf("environment: not recorded\n");
    std::printf("processes:   %zu (pid and command name):\n", comms.size());
    for (const auto& [pid, comm] : comms) std::printf("             %u %s\n", pid, escape_text(comm).c_str());
    std::printf("paths:       %zu file paths (mapped files, executables, unlinked files):\n", paths.size());
    for (const auto& p : paths) std::printf("             %s\n", escape_text(p).c_str());
    if (stacks)
      std::printf("stack bytes: %" PRIu64
                  " raw user stacks, %s of stack memory: it may hold secrets (keys, passwords)\n",
                  stacks, human_size(stack_bytes).c_str());
    else
      std::printf("stack bytes: none\n");
    if (frame_stacks)
      std::printf("stack frames: %" PRIu64 " user stacks as %" PRIu64
                  " return addresses (code locations only, no stack memory)\n",
                  frame_stacks, frames);
    if (jit_names)
      std::printf("jit names:   %" PRIu64
                  " names of generated code from the runtimes' perf maps and jitdumps (function names, script paths)\n",
                  jit_names);
    else
      std::printf("jit names:   none\n");
    return replayed_status(reader, records);
  }
  const size_t checkpoints = reader.checkpoints().size();
  if (json) {
    char format[24];
    std::snprintf(format, sizeof(format), "%u.%u", h.format_major, h.format_minor);
    std::string out;
    JsonWriter w(out);
    w.begin_object()
        .kv("file", path)
        .kv("format", format)
        .kv("vmatrace", h.vmatrace_version)
        .kv("kernel", h.kernel_release)
        .kv("host", h.hostname)
        .kv("boot_id", h.boot_id)
        .kv("command", cmd);
    w.key("duration_s").value(duration, "%.6f");
    w.kv("records", records).kv("processes", pids.size()).kv("checkpoints", checkpoints).kv("lost", lost);
    if (unread) w.kv("lost_unread", unread);
    if (lost_in_kernel) w.kv("lost_in_kernel", *lost_in_kernel);
    w.key("losses").begin_array();
    for (const auto& l : losses.sites()) {
      w.begin_object().kv("pid", l.pid).kv("comm", l.comm).kv("lost", l.lost).kv("times", l.times);
      w.key("first_s").value(l.first_ts > h.start_ts ? (l.first_ts - h.start_ts) / 1e9 : 0.0, "%.6f");
      w.key("last_s").value(l.last_ts > h.start_ts ? (l.last_ts - h.start_ts) / 1e9 : 0.0, "%.6f");
      w.end_object();
    }
    w.end_array();
    w.kv("stack_bytes", stack_bytes);
    w.kv("stack_frames", frames);
    w.kv("jit_names", jit_names);
    w.kv("state", state);
    // The chunks' payload bytes before compression (what exports are sized against).
    uint64_t raw_bytes = 0;
    for (const auto& c : reader.chunks()) raw_bytes += c.raw_len;
    w.kv("raw_bytes", raw_bytes);
    w.key("counts").begin_object();
    for (const auto& [k, v] : counts) w.kv(k, v);
    w.end_object();
    w.key("attach").begin_object();
    for (const auto& [k, v] : h.attach_modes) w.kv(k, v);
    w.end_object();
    w.key("objects").begin_array();
    for (const auto& o : objects) w.value(o);
    w.end_array();
    w.end_object();
    out += '\n';
    std::fputs(out.c_str(), stdout);
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
    // Where replay --at/--diff may start instead of the first record.
    if (checkpoints) std::printf("seek:      %zu checkpoints of the layouts\n", checkpoints);
    std::string c;
    for (const auto& [k, v] : counts) c += (c.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    std::printf("events:    %s\n", c.c_str());
    std::printf("lost:      %" PRIu64, lost);
    if (unread) std::printf(" (%" PRIu64 " of them written after tracing stopped: not read)", unread);
    // The tracer's own count of the ring buffer's failures, from the trailer
    // (recordings since it was added): shown only when the stream disagrees.
    if (lost_in_kernel && *lost_in_kernel != lost - unread)
      std::printf(" (but the kernel failed to deliver %" PRIu64 " records)", *lost_in_kernel);
    std::printf("\n");
    // Where: each process's losses and when (from the start of the recording).
    std::fputs(losses.text(h.start_ts, 20, "           ").c_str(), stdout);
    if (stacks)
      std::printf("stacks:    %" PRIu64
                  " raw user stacks, %s of stack memory (may hold secrets; see `info --privacy`)\n",
                  stacks, human_size(stack_bytes).c_str());
    if (frame_stacks)
      std::printf("stacks:    %" PRIu64 " user stacks as unwound frames only (no stack memory)\n", frame_stacks);
    if (jit_names) std::printf("jit:       %" PRIu64 " names of generated code (perf maps, jitdumps)\n", jit_names);
    std::printf("objects:   %zu mapped files (dev:ino build-id path)\n", objects.size());
    for (const auto& o : objects) std::printf("           %s\n", escape_text(o).c_str());
    std::printf("state:     %s\n", state);
  }
  return replayed_status(reader, records);
}

struct InfoArgs {
  std::string path;
  bool json = false;
  bool privacy = false;
};

}  // namespace

Command add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  auto* info = app.add_subcommand("info", "describe a recording: kernel, host, command, duration, counts, losses");
  info->add_option("file", a->path, "recording")->required();
  info->add_flag("--json", a->json, "as JSON");
  info->add_flag(
      "--privacy", a->privacy,
      "list what the file would reveal if shared: host, command line, process names, file paths, stack bytes");
  return {info, [a] {
            if (a->json && a->privacy) throw UserError("info: --privacy is a text listing; give --json or --privacy");
            return run_info(a->path, a->json, a->privacy);
          }};
}

}  // namespace vmatrace
