// Timestamps as differences, for compression: inside a record chunk of type
// kChunkRecordsZstdDelta each record's vmat_hdr.ts is stored as its
// difference from the previous record's (the first: from 0), and a syscall
// record's enter_ts as its distance back from its own ts. Neighbouring
// records are microseconds apart, so the eight bytes of an absolute
// nanosecond clock become two or three that repeat, which zstd packs (storm
// recording: 6.2 -> 4.7 bytes per record at level 1). Nothing else in a
// record changes: type and size stay where the framing checks read them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vmatrace {

// In place, over concatenated records. Both walk the records by their size
// field and stop at the first one whose framing is impossible (too short,
// running past the end), leaving it and the rest as they are: the reader's
// framing check reports it.
void encode_ts_deltas(std::span<std::byte> records) noexcept;
void decode_ts_deltas(std::span<std::byte> records) noexcept;

// One record of such a chunk, whose framing the caller has checked (its
// size field is record.size(), at least a vmat_hdr): what the functions
// above do to it, given the previous record's absolute ts (0 for a chunk's
// first). They return this record's absolute ts, the next one's `prev`.
// The writer encodes each record as it appends it (the bytes are in the
// cache then, not a second pass over the chunk at its seal), the reader
// decodes in its framing check's pass.
std::uint64_t encode_ts_delta(std::span<std::byte> record, std::uint32_t type, std::uint64_t prev) noexcept;
std::uint64_t decode_ts_delta(std::span<std::byte> record, std::uint32_t type, std::uint64_t prev) noexcept;

}  // namespace vmatrace
