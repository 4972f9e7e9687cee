#include "pipeline/recording.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/processor.h"
#include "core/records.h"
#include "pipeline/pipeline.h"
#include "util/errors.h"

namespace vmatrace {

RecordingReader open_recording(const std::string& path) {
  try {
    return RecordingReader::open(path);
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
}

uint64_t time_origin(const std::string& path) {
  RecordingReader reader = open_recording(path);
  // The note is the session's first record; a few records of slack cover a
  // writer that put others before it.
  constexpr int kLook = 64;
  uint64_t first = 0;
  std::string err;
  for (int i = 0; i < kLook; i++) {
    auto rec = reader.next();
    if (!rec) break;
    auto d = decode_record(*rec, &err);
    if (!d) continue;
    if (d->type == VMAT_REC_NOTE) {
      if (d->note && d->note->key == kNoteSessionStart) return d->hdr.ts;
      continue;
    }
    if (!first) first = d->hdr.ts;
  }
  return first ? first : reader.header().start_ts;
}

bool recording_damaged(const RecordingReader& reader) {
  const auto state = reader.status().state;
  return state != ReadStatus::State::Clean && state != ReadStatus::State::Reading;
}

int damage_status(const RecordingReader& reader, std::string_view what) {
  if (!recording_damaged(reader)) return 0;
  std::fprintf(stderr, "vmatrace: %s; %.*s\n", reader.status().message.c_str(), static_cast<int>(what.size()),
               what.data());
  return kExitDamaged;
}

bool start_at_checkpoint(RecordingReader& reader, Pipeline& pipeline, uint64_t moment, Checkpoint::Restored& out,
                         const std::function<bool(const Processor&)>& accept) {
  const char* mode = std::getenv("VMATRACE_SEEK");
  const std::string_view how = mode ? mode : "";
  if (how == "off") return false;
  const auto checkpoints = reader.checkpoints(/*use_index=*/how != "scan");
  // Their ts is the largest of the records before them, notes excepted: non-decreasing.
  auto it = std::upper_bound(checkpoints.begin(), checkpoints.end(), moment,
                             [](uint64_t m, const CheckpointEntry& c) { return m < c.ts; });
  // A damaged or refused checkpoint: the one before it, a few times.
  constexpr int kTries = 4;
  for (int tries = 0; it != checkpoints.begin() && tries < kTries; tries++) {
    --it;
    auto state = reader.read_checkpoint(*it);
    if (!state) continue;
    if (accept) {
      // Judged on a copy: `pipeline` is restored only once accepted.
      Processor trial;
      Checkpoint::Restored ignored;
      if (!Checkpoint::restore(*state, trial, ignored, nullptr) || !accept(trial)) continue;
    }
    if (!pipeline.restore(*state, out, nullptr)) continue;
    reader.seek_after(*it);
    return true;
  }
  return false;
}

void enable_recorded_malloc(Pipeline& pipeline, const std::string& path, const SymbolSources& symbols,
                            bool all_source_lines) {
  pipeline.enable_malloc(/*live=*/false, all_source_lines, nullptr, symbols);
  RecordingReader reader = open_recording(path);
  // No stacks, no JIT names (written only with them): no first pass.
  const auto& extra = reader.header().extra;
  if (auto it = extra.find("malloc_stacks"); it != extra.end() && it->second == "off") return;
  // Read when a frame first needs them (most recordings name every frame
  // from files, and the pass reads the whole file).
  pipeline.load_jit_symbols_when_needed([path] { return open_recording(path); });
}

}  // namespace vmatrace
