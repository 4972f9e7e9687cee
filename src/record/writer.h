// Streaming writer for vmatrace recordings (layout: src/record/format.h).
//
// Bounded memory (one chunk of records plus its compressed copy), append
// only, never seeks: works on a pipe as well as on a file. Not thread-safe;
// the tracer's consumer thread owns it.
#pragma once

#include "record/format.h"
#include "util/unique_fd.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vmatrace {

struct WriterOptions {
  // Replace an existing regular file owned by us or root. Symlinks and
  // non-regular files are refused even then.
  bool force = false;
  // A chunk is sealed once its records reach this many uncompressed bytes.
  std::size_t chunk_size = recfmt::kDefaultChunkSize;
  // zstd level; 0 stores chunks uncompressed.
  int zstd_level = recfmt::kDefaultZstdLevel;
  // checkpoint_due() once this many record bytes (uncompressed) came since
  // the last checkpoint; 0: never.
  std::size_t checkpoint_interval = recfmt::kDefaultCheckpointInterval;
};

// A checkpoint chunk written (or found by a reader): where it is and the
// largest record ts before it.
struct CheckpointEntry {
  std::uint64_t offset = 0;  // of its chunk header
  std::uint64_t ts = 0;      // largest vmat_hdr.ts of the records before it (0: none)
  std::uint32_t seq = 0;     // its chunk sequence number
  std::uint32_t length = 0;  // header_size + stored_len: the next chunk starts at offset + length
};

class RecordingWriter {
 public:
  // Creates `path` (mode 0600, O_EXCL|O_NOFOLLOW) and writes the header.
  // Throws RecordingError: "<path> exists; use --force to overwrite", a
  // symlink or non-regular file in the way, or any open/write failure.
  RecordingWriter(const std::string& path, const RecordingHeader& header, const WriterOptions& options = {});
  // Writes to an already open descriptor (stdout, a pipe, a test's memfd).
  // `name` is only used in messages. options.force is ignored.
  RecordingWriter(UniqueFd fd, std::string name, const RecordingHeader& header, const WriterOptions& options = {});

  RecordingWriter(RecordingWriter&&) noexcept;
  RecordingWriter& operator=(RecordingWriter&&) noexcept;
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  // Without close() the destructor still seals the buffered records
  // (ignoring errors) but writes no trailer, so readers report the file as
  // cut short, which is what it is.
  ~RecordingWriter();

  // Buffers one record: bytes starting with struct vmat_hdr whose size
  // field equals record.size(). May seal and write a chunk. Throws
  // RecordingError on a malformed record or a write error.
  void append(std::span<const std::byte> record);

  // Seals and writes the buffered records, if any. Call periodically and
  // when a stop is requested (not from a signal handler: it allocates and
  // compresses). Throws RecordingError on a write error; chunks written
  // before stay valid.
  void flush();

  // Seals buffered records, then writes one opaque chunk of `type`: for
  // format extensions (readers skip types they do not know) and tests.
  void append_chunk(std::uint16_t type, std::span<const std::byte> payload);

  // Whether the caller should write a checkpoint now (WriterOptions::
  // checkpoint_interval; never on a writer that cannot take one). Cheap:
  // asked after every record.
  bool checkpoint_due() const noexcept {
    return options_.checkpoint_interval != 0 &&
           record_bytes_ - checkpoint_record_bytes_ >= options_.checkpoint_interval &&
           file_bytes_ - checkpoint_file_bytes_ >= checkpoint_spacing_;
  }
  // Seals the buffered records, then writes `state` (the frontend's whole
  // state after every record appended so far, core/checkpoint.h) as a
  // zstd-compressed checkpoint chunk, and lists it in the index close()
  // writes. Throws RecordingError as append() does.
  void append_checkpoint(std::span<const std::byte> state);
  const std::vector<CheckpointEntry>& checkpoints() const noexcept { return checkpoints_; }

  // Seals the last chunk and writes the end-of-recording trailer carrying
  // the writer's totals plus `totals` (e.g. {"lost", "12"}), then closes
  // the descriptor. Idempotent: later calls do nothing.
  void close(const std::map<std::string, std::string>& totals = {});

  bool closed() const noexcept { return closed_; }
  const std::string& path() const noexcept { return name_; }
  std::uint64_t records() const noexcept { return records_; }            // appended so far
  std::uint64_t chunks() const noexcept { return chunks_; }              // record chunks written
  std::uint64_t record_bytes() const noexcept { return record_bytes_; }  // uncompressed record bytes
  std::uint64_t file_bytes() const noexcept { return file_bytes_; }      // bytes written to the fd

 private:
  struct ZstdCtxFree {
    void operator()(void* p) const noexcept;
  };

  void write_header(const RecordingHeader& header);
  void seal();
  void write_chunk(std::uint16_t type, std::span<const std::byte> payload, std::uint32_t raw_len, std::uint32_t records,
                   std::uint64_t min_ts, std::uint64_t max_ts);
  void write_all(std::span<const std::byte> data);
  void check_usable() const;

  UniqueFd fd_;
  std::string name_;
  WriterOptions options_;
  std::unique_ptr<void, ZstdCtxFree> cctx_;  // ZSTD_CCtx, reused across chunks
  std::vector<std::byte> buffer_;            // records of the open chunk
  std::vector<std::byte> compressed_;
  std::uint32_t buffered_records_ = 0;
  std::uint64_t min_ts_ = 0;
  std::uint64_t max_ts_ = 0;
  std::uint64_t prev_ts_ = 0;  // the last buffered record's ts, which the next one is coded against
  std::uint32_t next_seq_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t chunks_ = 0;
  std::uint64_t record_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;
  bool closed_ = false;
  bool failed_ = false;  // a write failed: the stream's tail is unknown, refuse more
  // Checkpoints: the largest ts of a moment appended so far (every record
  // but notes: a note's ts is when the frontend wrote it, e.g. the mapped
  // objects' notes at the end, after tracing stopped; replay does not count
  // them as moments either), the totals at the last checkpoint, and how far
  // the file must grow before the next one.
  std::uint64_t moment_max_ts_ = 0;
  std::uint64_t checkpoint_record_bytes_ = 0;
  std::uint64_t checkpoint_file_bytes_ = 0;
  std::uint64_t checkpoint_spacing_ = 0;
  std::unique_ptr<void, ZstdCtxFree> checkpoint_cctx_;  // when records are stored raw
  std::vector<CheckpointEntry> checkpoints_;
};

// Serialises a header (preamble + TLV) as the writer does; exposed for tests
// and tools that craft recordings.
std::vector<std::byte> encode_recording_header(const RecordingHeader& header,
                                               std::uint16_t major = recfmt::kFormatMajor,
                                               std::uint16_t minor = recfmt::kFormatMinor);

// Fills the host facts of a header: kernel release, machine, hostname, boot
// id, page size, clock base, start_ts (now) and abi_version. Leaves
// vmatrace_version, command, pids, attach_modes and extra to the caller.
void fill_host_info(RecordingHeader& header);

}  // namespace vmatrace
