// On-disk layout of a vmatrace recording (*.vmat). docs/recording-format.md
// is the prose version of this file; keep the two in step.
//
//   file     := preamble header-tlv chunk* trailer-chunk
//   preamble := 24 bytes, fixed forever (magic, version, header length)
//   chunk    := 48-byte chunk header, payload
//
// All framing integers are little-endian regardless of the host. Records
// inside chunk payloads are kept byte for byte as the BPF side produced them,
// i.e. in the recording host's byte order (header tag kTagRecordByteOrder).
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmatrace {

// Every failure to create, write, open or parse a recording. Read damage
// *after* the header is not an exception: RecordingReader::status() reports
// it so that everything intact before it can still be replayed.
class RecordingError : public std::runtime_error {
 public:
  explicit RecordingError(const std::string& what, int err = 0) : std::runtime_error(what), errno_(err) {}
  // errno of the failing system call, 0 when the error is about content.
  int error_code() const noexcept { return errno_; }

 private:
  int errno_;
};

// What a recording says about where and how it was made. The reader fills
// format_major/format_minor from the file; the writer ignores them.
struct RecordingHeader {
  std::uint16_t format_major = 0;
  std::uint16_t format_minor = 0;

  std::string vmatrace_version;
  std::uint32_t abi_version = 0;  // VMAT_ABI_VERSION of the records
  std::string kernel_release;     // uname -r
  std::string machine;            // uname -m: records carry arch bits (x86 PF error codes)
  std::string hostname;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id
  std::uint32_t page_size = 0;
  // Taken back to back so that record ts (CLOCK_MONOTONIC) can be shown as
  // wall-clock time: wall = ts - clock_monotonic_ns + clock_realtime_ns.
  std::uint64_t clock_monotonic_ns = 0;
  std::uint64_t clock_realtime_ns = 0;
  std::uint64_t start_ts = 0;                       // CLOCK_MONOTONIC ns when recording began
  std::vector<std::string> command;                 // traced command line (launch mode)
  std::vector<std::uint32_t> pids;                  // traced pids (attach mode)
  std::map<std::string, std::string> attach_modes;  // hook family -> mechanism
  std::map<std::string, std::string> extra;         // anything else, free form
  bool records_little_endian = true;                // byte order of the record payloads
};

namespace recfmt {

// --- preamble (offset 0, 24 bytes) ----------------------------------------
// Starts with a non-ASCII byte and CR LF / ^Z / LF like PNG, so text-mode
// transfers and `file`-style sniffing are caught early.
inline constexpr std::array<unsigned char, 8> kFileMagic = {0x89, 'V', 'M', 'A', 'T', '\r', '\n', 0x1a};

// A reader refuses a newer major; a newer minor only adds header tags, chunk
// types or chunk-header bytes, all of which older readers skip. Major 2 added
// record chunks with delta-coded timestamps (kChunkRecordsZstdDelta), which
// a 1.x reader cannot read; files of major 1 are still read. Minor 1 added
// checkpoint chunks and their index (kChunkCheckpoint, kChunkCheckpointIndex).
inline constexpr std::uint16_t kFormatMajor = 2;
inline constexpr std::uint16_t kFormatMinor = 1;

inline constexpr std::size_t kPreambleSize = 24;
// Offsets inside the preamble.
inline constexpr std::size_t kPreMagic = 0;       // u8[8]
inline constexpr std::size_t kPreMajor = 8;       // u16
inline constexpr std::size_t kPreMinor = 10;      // u16
inline constexpr std::size_t kPreHeaderLen = 12;  // u32: bytes of header TLV after the preamble
inline constexpr std::size_t kPreReserved = 16;   // u32: 0 when written, ignored when read
inline constexpr std::size_t kPreHeaderCrc = 20;  // u32: crc32c(preamble[0,20) ++ header TLV)

// Command lines can be long (ARG_MAX is 2 MiB), but a header is never huge.
inline constexpr std::uint32_t kMaxHeaderLen = 16u << 20;

// --- header TLV entries -----------------------------------------------------
// entry := u16 tag, u16 reserved (0), u32 length, u8 value[length]
// Unknown tags are skipped; a repeated tag replaces (lists: appends) the value.
inline constexpr std::size_t kTlvHeadSize = 8;
enum HeaderTag : std::uint16_t {
  kTagVmatraceVersion = 1,   // string
  kTagAbiVersion = 2,        // u32
  kTagKernelRelease = 3,     // string
  kTagHostname = 4,          // string
  kTagBootId = 5,            // string
  kTagClockMonotonic = 6,    // u64
  kTagClockRealtime = 7,     // u64
  kTagCommand = 8,           // string list
  kTagPids = 9,              // u32 list (4 bytes each)
  kTagAttachModes = 10,      // string map
  kTagStartTs = 11,          // u64
  kTagExtra = 12,            // string map
  kTagMachine = 13,          // string
  kTagPageSize = 14,         // u32
  kTagRecordByteOrder = 15,  // u8: 1 little-endian, 2 big-endian
};
// string      := raw bytes (no NUL)
// string list := (u32 length, bytes)*
// string map  := (u32 key length, key bytes, u32 value length, value bytes)*

// --- chunks -----------------------------------------------------------------
inline constexpr std::uint32_t kChunkMagic = 0x4b434d56;  // "VMCK" on disk

enum ChunkType : std::uint16_t {
  kChunkRecordsZstd = 1,  // payload: one zstd frame of concatenated records
  kChunkRecordsRaw = 2,   // payload: concatenated records, uncompressed
  kChunkTrailer = 3,      // payload: string map of totals; last chunk of a clean file
  // payload: one zstd frame of concatenated records whose timestamps are
  // delta-coded (record/ts_delta.h); written since format 2.0
  kChunkRecordsZstdDelta = 4,
  // payload: one zstd frame of the frontend's whole state after every record
  // before the chunk (core/checkpoint.h), so that a reader can start there
  // instead of at the first record; max_ts (= min_ts): the largest record ts
  // before it. Written since format 2.1; older readers skip it.
  kChunkCheckpoint = 5,
  // payload: the file's checkpoints (kCheckpointIndex* below), written just
  // before the trailer, whose kTrailerCheckpointIndex names its offset.
  kChunkCheckpointIndex = 6,
};

inline constexpr std::size_t kChunkHeaderSize = 48;
// Offsets inside the chunk header.
inline constexpr std::size_t kChMagic = 0;        // u32 kChunkMagic
inline constexpr std::size_t kChType = 4;         // u16 ChunkType
inline constexpr std::size_t kChHeaderSize = 6;   // u16 bytes of chunk header (>= 48)
inline constexpr std::size_t kChRawLen = 8;       // u32 uncompressed payload length
inline constexpr std::size_t kChStoredLen = 12;   // u32 payload bytes on disk
inline constexpr std::size_t kChRecords = 16;     // u32 number of records
inline constexpr std::size_t kChPayloadCrc = 20;  // u32 crc32c(extra header bytes ++ stored payload)
inline constexpr std::size_t kChMinTs = 24;       // u64 smallest record ts in the chunk
inline constexpr std::size_t kChMaxTs = 32;       // u64 largest record ts in the chunk
inline constexpr std::size_t kChSeq = 40;         // u32 chunk sequence number, from 0
inline constexpr std::size_t kChHeaderCrc = 44;   // u32 crc32c(header[0,44))

// Hostile-input limits: a reader never allocates more than this per chunk.
inline constexpr std::uint32_t kMaxChunkLen = 64u << 20;
inline constexpr std::uint16_t kMaxChunkHeaderSize = 4096;

// Writer defaults: 1 MiB chunks bound both memory and the data lost with an
// unflushed chunk. zstd level 1: on the storm recording with the vma family
// (174 MB of records) it compresses at 2.1 GB/s against 1.0 GB/s for level
// 3, to a file 2% larger; fault streams come out the same size at either
// level (unit.RecordSize: 10.87 vs 10.82 bytes per 64-byte fault record).
// The recorder shares the machine with the traced program.
inline constexpr std::size_t kDefaultChunkSize = 1u << 20;
inline constexpr int kDefaultZstdLevel = 1;

// Trailer keys the writer always sets; callers add their own (e.g. "lost").
inline constexpr const char* kTrailerRecords = "records";
inline constexpr const char* kTrailerChunks = "chunks";
inline constexpr const char* kTrailerBytes = "bytes";
// Byte offset of the kChunkCheckpointIndex chunk (decimal), when any
// checkpoint was written.
inline constexpr const char* kTrailerCheckpointIndex = "checkpoint_index";

// --- checkpoint index payload (kChunkCheckpointIndex) -------------------------
// u32 version (1), u32 count, then count entries of kCheckpointIndexEntrySize:
inline constexpr std::uint32_t kCheckpointIndexVersion = 1;
inline constexpr std::size_t kCheckpointIndexHeadSize = 8;
inline constexpr std::size_t kCheckpointIndexEntrySize = 24;
inline constexpr std::size_t kCiOffset = 0;  // u64 the checkpoint chunk's offset
inline constexpr std::size_t kCiTs = 8;      // u64 its max_ts
inline constexpr std::size_t kCiSeq = 16;    // u32 its seq
inline constexpr std::size_t kCiLen = 20;    // u32 its header_size + stored_len

// Writer default: a checkpoint after every 16 MiB of records (about 70k
// storm records: a moment is never more than that from a place to start), and
// never before the file grew by kCheckpointSpacing times the last
// checkpoint's size, so that checkpoints of a large layout stay a few
// percent of the file.
inline constexpr std::size_t kDefaultCheckpointInterval = 16u << 20;
inline constexpr std::uint64_t kCheckpointSpacing = 32;

// Little-endian field access for the framing above. memcpy keeps this free
// of alignment and aliasing UB; compilers turn it into plain loads.
template <typename T>
inline T load_le(const std::byte* p) noexcept {
  T v{};
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v = static_cast<T>(v | (static_cast<T>(std::to_integer<unsigned>(p[i])) << (8 * i)));
  return v;
}

template <typename T>
inline void store_le(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::byte>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

template <typename T>
inline void append_le(std::vector<std::byte>& out, T v) {
  std::size_t at = out.size();
  out.resize(at + sizeof(T));
  store_le(out.data() + at, v);
}

}  // namespace recfmt
}  // namespace vmatrace
