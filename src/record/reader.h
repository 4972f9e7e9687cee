// Reader for vmatrace recordings (layout: src/record/format.h).
//
// Built for hostile input: every length is checked against the bytes that
// are really there, per-chunk allocations are capped (recfmt::kMaxChunkLen)
// and zstd decompresses into a buffer of the declared size only. Damage
// after the header ends the stream without an exception: next() returns
// std::nullopt and status() tells what happened and where, and every record
// of every intact chunk before the damage has been yielded.
#pragma once

#include "record/format.h"
#include "record/writer.h"
#include "util/unique_fd.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmatrace {

// Where one record chunk lies, for random access ("layout at time T"):
// pick a chunk by ts, seek() to it and read from there.
struct ChunkInfo {
  std::uint64_t offset = 0;  // of the chunk header, from the start of the file
  std::uint32_t seq = 0;     // chunk sequence number (all chunk types count)
  std::uint16_t type = 0;    // recfmt::ChunkType
  std::uint32_t records = 0;
  std::uint32_t raw_len = 0;     // uncompressed payload bytes
  std::uint32_t stored_len = 0;  // payload bytes on disk
  std::uint64_t min_ts = 0;      // smallest record ts in the chunk
  std::uint64_t max_ts = 0;      // largest record ts in the chunk
};

struct ReadStatus {
  enum class State {
    Reading,    // not at the end yet
    Clean,      // the end-of-recording trailer was read
    Truncated,  // the file ends mid-chunk or without a trailer
    Corrupt,    // bad magic, checksum or structure
  };
  State state = State::Reading;
  std::string message;       // for humans; names the file and the byte offset
  std::uint64_t offset = 0;  // where the damage (or, when clean, the trailer) starts
  std::uint64_t chunks = 0;  // intact chunks read before it (all types)
};

struct ReaderOptions {
  // Off only for fuzzing: otherwise almost every mutated input fails a CRC
  // and never reaches the structure checks, the decompressor, the decoder
  // or the processor.
  bool verify_checksums = true;
};

class RecordingReader {
 public:
  // Opens a regular file and parses its header. Throws RecordingError when
  // the file cannot be opened, is empty, is not a recording ("X is not a
  // vmatrace recording"), has a truncated or corrupt header, or needs a
  // newer vmatrace ("X was written by format version N; ... upgrade").
  static RecordingReader open(const std::string& path, ReaderOptions opts = {});
  // Same over bytes in memory, which must outlive the reader (tests, fuzzing).
  static RecordingReader from_memory(std::span<const std::byte> data, std::string name = "<memory>",
                                     ReaderOptions opts = {});

  // The end-of-recording trailer of the file at path, read from its end
  // without reading the chunks before it: std::nullopt when the file does
  // not end with one (truncated, damaged, not a recording). The checks are
  // the reader's own (header and payload checksums, the chunk ending
  // exactly at the end of the file), so a map returned is the trailer.
  static std::optional<std::map<std::string, std::string>> peek_trailer(const std::string& path);

  RecordingReader(RecordingReader&&) noexcept;
  RecordingReader& operator=(RecordingReader&&) noexcept;
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;
  ~RecordingReader();

  const RecordingHeader& header() const noexcept { return header_; }
  const std::string& name() const noexcept { return name_; }

  // The next record: at least sizeof(vmat_hdr) bytes, exactly its hdr.size
  // long. The bytes stay valid until the next call to next() or seek();
  // they are not aligned, so memcpy them into event structs.
  // std::nullopt at the end of the stream; see status() for why.
  std::optional<std::span<const std::byte>> next();

  const ReadStatus& status() const noexcept { return status_; }
  // Record chunks met so far, in file order (each listed once, also after
  // seek()). Trailer and unknown chunks are not listed.
  const std::vector<ChunkInfo>& chunks() const noexcept { return index_; }
  // Things skipped but survivable: unknown chunk types, bytes after the trailer.
  const std::vector<std::string>& notes() const noexcept { return notes_; }
  // The trailer's key/values (records, chunks, bytes, lost, ...) once read.
  const std::map<std::string, std::string>& trailer() const noexcept { return trailer_; }
  // File offset of the first chunk (just after the header).
  std::uint64_t data_offset() const noexcept { return data_offset_; }

  // Continues reading at a chunk previously listed by chunks(). Resets
  // status() to Reading.
  void seek(const ChunkInfo& chunk);

  // The recording's checkpoints (format 2.1), in file order: from the index
  // the trailer names, or, without one (a file cut short, an index that does
  // not check out, `use_index` false), from a walk over the chunk headers
  // that stops at the first header that does not check out. Does not move
  // the read position. Empty for older files.
  std::vector<CheckpointEntry> checkpoints(bool use_index = true);
  // A checkpoint's state (core/checkpoint.h), its chunk checked as next()
  // checks chunks; std::nullopt with `why` set when it does not check out.
  std::optional<std::vector<std::byte>> read_checkpoint(const CheckpointEntry& c, std::string* why = nullptr);
  // Continues reading with the chunk after the checkpoint: next() yields the
  // records after it. Resets status() to Reading.
  void seek_after(const CheckpointEntry& c);

 private:
  RecordingReader() = default;
  struct ZstdDctxFree {
    void operator()(void* p) const noexcept;
  };

  void parse_header();
  // Reads n bytes at off (fewer at the end of the source). The span points
  // into the memory source or into `scratch`.
  std::span<const std::byte> read_at(std::uint64_t off, std::size_t n, std::vector<std::byte>& scratch);
  std::uint64_t source_size(bool refresh);
  bool load_next_chunk();  // false when the stream ended (status_ set)
  // The checkpoint index the trailer at the end of the source names, if
  // all of it checks out.
  std::optional<std::vector<CheckpointEntry>> checkpoint_index();
  void finish(ReadStatus::State state, std::string message, std::uint64_t offset);
  void truncated(std::uint64_t offset, const std::string& why);
  void corrupt(std::uint64_t offset, const std::string& why);

  std::string name_;
  ReaderOptions opts_;
  UniqueFd fd_;  // file source
  std::uint64_t file_size_ = 0;
  std::span<const std::byte> memory_;  // memory source (when fd_ is empty)
  RecordingHeader header_;
  std::uint64_t data_offset_ = 0;

  std::uint64_t pos_ = 0;  // next chunk header
  std::uint32_t next_seq_ = 0;
  std::span<const std::byte> records_;  // records of the current chunk
  std::size_t record_pos_ = 0;
  std::vector<std::byte> stored_buf_;  // payload read from the file
  std::vector<std::byte> raw_buf_;     // decompressed payload
  std::vector<std::byte> head_buf_;    // chunk header read from the file
  std::unique_ptr<void, ZstdDctxFree> dctx_;

  ReadStatus status_;
  std::vector<ChunkInfo> index_;
  std::vector<std::string> notes_;
  std::map<std::string, std::string> trailer_;
};

}  // namespace vmatrace
