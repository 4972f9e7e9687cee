#include "pipeline/recording.h"

#include <cstdio>

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

void enable_recorded_malloc(Pipeline& pipeline, const std::string& path, const SymbolSources& symbols,
                            bool all_source_lines) {
  pipeline.enable_malloc(/*live=*/false, all_source_lines, nullptr, symbols);
  RecordingReader reader = open_recording(path);
  // No stacks, no JIT names (written only with them): no first pass.
  const auto& extra = reader.header().extra;
  if (auto it = extra.find("malloc_stacks"); it != extra.end() && it->second == "off") return;
  pipeline.load_jit_symbols(reader);
}

}  // namespace vmatrace
