#include "pipeline/recording.h"

#include <cstdio>

#include "util/errors.h"

namespace vmatrace {

RecordingReader open_recording(const std::string& path) {
  try {
    return RecordingReader::open(path);
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
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

}  // namespace vmatrace
