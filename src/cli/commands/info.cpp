// `vmatrace info FILE`: what a recording holds (kernel, host, command,
// duration, counts, losses, mapped objects) and whether it is intact.
#include <CLI/CLI.hpp>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "cli/commands/commands.h"
#include "core/records.h"
#include "pipeline/recording.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

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
      case VMAT_EV_SYSCALL:
        counts["syscall"]++;
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
        break;
      case VMAT_EV_FS:
        counts["unlink_or_rename"]++;
        break;
      case VMAT_EV_USER_STACK:
        counts["user_stack"]++;
        break;
      case VMAT_REC_FILE_DELETED:
        counts["file_deleted"]++;
        break;
      default:
        counts["unknown"]++;
        break;
    }
  }
  std::string cmd;
  for (const auto& a : h.command) cmd += (cmd.empty() ? "" : " ") + a;
  double duration = last > h.start_ts ? (last - h.start_ts) / 1e9 : 0;
  const char* state = reader.status().state == ReadStatus::State::Clean ? "clean" : "damaged";
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
    w.kv("records", records).kv("processes", pids.size()).kv("lost", lost).kv("state", state);
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
    std::string c;
    for (const auto& [k, v] : counts) c += (c.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    std::printf("events:    %s\n", c.c_str());
    std::printf("lost:      %" PRIu64 "\n", lost);
    std::printf("objects:   %zu mapped files (dev:ino build-id path)\n", objects.size());
    for (const auto& o : objects) std::printf("           %s\n", escape_text(o).c_str());
    std::printf("state:     %s\n", state);
  }
  return replayed_status(reader, records);
}

struct InfoArgs {
  std::string path;
  bool json = false;
};

}  // namespace

Command add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  auto* info = app.add_subcommand("info", "describe a recording: kernel, host, command, duration, counts, losses");
  info->add_option("file", a->path, "recording")->required();
  info->add_flag("--json", a->json, "as JSON");
  return {info, [a] { return run_info(a->path, a->json); }};
}

}  // namespace vmatrace
