#pragma once
// The offline commands' input: opening a recording, and what a damaged one
// means for the exit status. Every command that reads a recording goes
// through here, so the messages and the status are the same everywhere.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/checkpoint.h"
#include "record/reader.h"
#include "sym/unwinder.h"

namespace vmatrace {

// Exit status of a command over a damaged recording: what could be read was
// used (printed, reported), but the file did not end cleanly.
inline constexpr int kExitDamaged = 3;

// Opens `path` or throws UserError with the reader's explanation.
RecordingReader open_recording(const std::string& path);

// The time origin of a recording: what "+T" in --at, --since, --until and
// --diff counts from, and what the event listing's relative times (and the
// HTML timeline's) are measured from. It is the session_start note, written
// once the BPF programs are loaded and attached (the file header's start_ts
// is taken before the load, up to a second earlier); a recording without it
// counts from its first record, as the printer does.
uint64_t time_origin(const std::string& path);

// The stream ended on damage (truncated, corrupt). A reader that stopped
// early (Reading: --at, --lineage --at) read only intact data: not damaged.
bool recording_damaged(const RecordingReader& reader);

// 0 when the recording read cleanly; else prints "vmatrace: DAMAGE; WHAT"
// on stderr (e.g. what = "replayed 12 records up to there") and returns
// kExitDamaged.
int damage_status(const RecordingReader& reader, std::string_view what);

class Pipeline;

// Starts `pipeline` (which has applied nothing) at the recording's last
// checkpoint (format 2.1) before which no record is later than `moment`:
// its Processor as it was there, `reader` positioned after it, and `out`
// what the records before it tell beside (loss windows, last ts, count).
// `accept` (optional) may refuse a restored state (then an earlier
// checkpoint is tried). false, with nothing changed, when none serves (an
// older file, a moment before the first, damage): read from the start.
// VMATRACE_SEEK=off always reads from the start; =scan finds the
// checkpoints by walking the chunk headers even when the trailer indexes them.
bool start_at_checkpoint(RecordingReader& reader, Pipeline& pipeline, uint64_t moment, Checkpoint::Restored& out,
                         const std::function<bool(const Processor&)>& accept = {});

// The malloc stage over the recording at `path`: its growths unwound and
// symbolized again, with the recording's JIT names (a first pass over the
// file reads them) and these extra symbol sources; all_source_lines as for
// Pipeline::enable_malloc.
void enable_recorded_malloc(Pipeline& pipeline, const std::string& path, const SymbolSources& symbols,
                            bool all_source_lines = true);

}  // namespace vmatrace
