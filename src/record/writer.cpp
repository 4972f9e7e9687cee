#include "record/writer.h"

#include "record/checksum.h"
#include "record/ts_delta.h"
#include "util/errors.h"
#include "util/safe_file.h"
#include "vmatrace/abi/events.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>

namespace vmatrace {
namespace {

using namespace recfmt;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void throw_errno(const std::string& what, int err) {
  throw RecordingError(what + ": " + errno_text(err), err);
}

// --- header TLV encoding ------------------------------------------------------

void put_bytes(std::vector<std::byte>& out, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}

void put_len(std::vector<std::byte>& out, std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max()) throw RecordingError("recording header field too long");
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(n));
}

void put_string(std::vector<std::byte>& out, const std::string& s) {
  put_len(out, s.size());
  put_bytes(out, s.data(), s.size());
}

// One TLV entry; `value` is already encoded.
void put_entry(std::vector<std::byte>& out, HeaderTag tag, const std::vector<std::byte>& value) {
  append_le<std::uint16_t>(out, tag);
  append_le<std::uint16_t>(out, 0);
  put_len(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

void put_str_entry(std::vector<std::byte>& out, HeaderTag tag, const std::string& s) {
  std::vector<std::byte> v;
  put_bytes(v, s.data(), s.size());
  put_entry(out, tag, v);
}

template <typename T>
void put_int_entry(std::vector<std::byte>& out, HeaderTag tag, T value) {
  std::vector<std::byte> v;
  append_le<T>(v, value);
  put_entry(out, tag, v);
}

void put_map_entry(std::vector<std::byte>& out, HeaderTag tag, const std::map<std::string, std::string>& m) {
  std::vector<std::byte> v;
  for (const auto& [k, val] : m) {
    put_string(v, k);
    put_string(v, val);
  }
  put_entry(out, tag, v);
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Creates the recording file through the one helper every output file uses
// (util/safe_file.h), reporting its refusals as RecordingError.
UniqueFd create_file(const std::string& path, bool force) {
  try {
    OutputFileOptions o;
    o.force = force;
    return create_output_file(path, o);
  } catch (const UserError& e) {
    throw RecordingError(e.what());
  }
}

}  // namespace

std::vector<std::byte> encode_recording_header(const RecordingHeader& h, std::uint16_t major, std::uint16_t minor) {
  std::vector<std::byte> tlv;
  put_str_entry(tlv, kTagVmatraceVersion, h.vmatrace_version);
  put_int_entry<std::uint32_t>(tlv, kTagAbiVersion, h.abi_version);
  put_str_entry(tlv, kTagKernelRelease, h.kernel_release);
  put_str_entry(tlv, kTagMachine, h.machine);
  put_str_entry(tlv, kTagHostname, h.hostname);
  put_str_entry(tlv, kTagBootId, h.boot_id);
  put_int_entry<std::uint32_t>(tlv, kTagPageSize, h.page_size);
  put_int_entry<std::uint64_t>(tlv, kTagClockMonotonic, h.clock_monotonic_ns);
  put_int_entry<std::uint64_t>(tlv, kTagClockRealtime, h.clock_realtime_ns);
  put_int_entry<std::uint64_t>(tlv, kTagStartTs, h.start_ts);
  put_int_entry<std::uint8_t>(tlv, kTagRecordByteOrder, h.records_little_endian ? 1 : 2);
  if (!h.command.empty()) {
    std::vector<std::byte> v;
    for (const auto& arg : h.command) put_string(v, arg);
    put_entry(tlv, kTagCommand, v);
  }
  if (!h.pids.empty()) {
    std::vector<std::byte> v;
    for (auto pid : h.pids) append_le<std::uint32_t>(v, pid);
    put_entry(tlv, kTagPids, v);
  }
  put_map_entry(tlv, kTagAttachModes, h.attach_modes);
  put_map_entry(tlv, kTagExtra, h.extra);
  if (tlv.size() > kMaxHeaderLen) throw RecordingError("recording header too large");

  std::vector<std::byte> out(kPreambleSize);
  std::memcpy(out.data() + kPreMagic, kFileMagic.data(), kFileMagic.size());
  store_le<std::uint16_t>(out.data() + kPreMajor, major);
  store_le<std::uint16_t>(out.data() + kPreMinor, minor);
  store_le<std::uint32_t>(out.data() + kPreHeaderLen, static_cast<std::uint32_t>(tlv.size()));
  store_le<std::uint32_t>(out.data() + kPreReserved, 0);
  std::uint32_t crc = crc32c(std::span(out.data(), kPreHeaderCrc));
  crc = crc32c(tlv, crc);
  store_le<std::uint32_t>(out.data() + kPreHeaderCrc, crc);
  out.insert(out.end(), tlv.begin(), tlv.end());
  return out;
}

void fill_host_info(RecordingHeader& h) {
  struct utsname u {};
  if (::uname(&u) == 0) {
    h.kernel_release = u.release;
    h.machine = u.machine;
    h.hostname = u.nodename;
  }
  h.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  long ps = ::sysconf(_SC_PAGESIZE);
  h.page_size = ps > 0 ? static_cast<std::uint32_t>(ps) : 0;
  // Realtime sampled between two monotonic reads; the midpoint pairs them
  // to within the cost of one clock_gettime call.
  std::uint64_t m0 = clock_ns(CLOCK_MONOTONIC);
  std::uint64_t r = clock_ns(CLOCK_REALTIME);
  std::uint64_t m1 = clock_ns(CLOCK_MONOTONIC);
  h.clock_monotonic_ns = m0 + (m1 - m0) / 2;
  h.clock_realtime_ns = r;
  h.start_ts = m1;
  h.abi_version = VMAT_ABI_VERSION;
  h.records_little_endian = std::endian::native == std::endian::little;
}

void RecordingWriter::ZstdCtxFree::operator()(void* p) const noexcept { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(p)); }

RecordingWriter::RecordingWriter(const std::string& path, const RecordingHeader& header, const WriterOptions& options)
    : RecordingWriter(create_file(path, options.force), path, header, options) {}

RecordingWriter::RecordingWriter(UniqueFd fd, std::string name, const RecordingHeader& header,
                                 const WriterOptions& options)
    : fd_(std::move(fd)), name_(std::move(name)), options_(options) {
  if (options_.chunk_size == 0 || options_.chunk_size > kMaxChunkLen)
    throw RecordingError("chunk size must be between 1 and " + std::to_string(kMaxChunkLen) + " bytes");
  if (options_.zstd_level > 0) {
    cctx_.reset(ZSTD_createCCtx());
    if (!cctx_) throw RecordingError("cannot allocate a zstd compression context");
  }
  buffer_.reserve(options_.chunk_size);
  write_all(encode_recording_header(header));
}

RecordingWriter::RecordingWriter(RecordingWriter&&) noexcept = default;
RecordingWriter& RecordingWriter::operator=(RecordingWriter&&) noexcept = default;

RecordingWriter::~RecordingWriter() {
  if (!fd_ || closed_ || failed_) return;
  try {
    seal();
  } catch (...) {
    // Destructors must not throw; what was sealed before is on disk.
  }
}

void RecordingWriter::check_usable() const {
  if (closed_) throw RecordingError(name_ + ": recording already closed");
  if (failed_) throw RecordingError(name_ + ": recording unusable after an earlier write error");
  if (!fd_) throw RecordingError("recording writer was moved from");
}

void RecordingWriter::append(std::span<const std::byte> record) {
  check_usable();
  if (record.size() < sizeof(vmat_hdr))
    throw RecordingError("record of " + std::to_string(record.size()) + " bytes is shorter than its header");
  vmat_hdr hdr;
  std::memcpy(&hdr, record.data(), sizeof hdr);
  if (hdr.size != record.size())
    throw RecordingError("record says it is " + std::to_string(hdr.size) + " bytes but " +
                         std::to_string(record.size()) + " were given");
  if (record.size() > kMaxChunkLen) throw RecordingError("record too large for a chunk");
  if (!buffer_.empty() && buffer_.size() + record.size() > options_.chunk_size) seal();

  const std::size_t at = buffer_.size();
  buffer_.insert(buffer_.end(), record.begin(), record.end());
  // Delta-coded timestamps compress to about three quarters
  // (record/ts_delta.h): coded now, while the record is in the cache.
  if (cctx_)
    prev_ts_ = encode_ts_delta(std::span<std::byte>(buffer_.data() + at, record.size()), hdr.type,
                               buffered_records_ == 0 ? 0 : prev_ts_);
  if (buffered_records_ == 0) {
    min_ts_ = max_ts_ = hdr.ts;
  } else {
    min_ts_ = std::min<std::uint64_t>(min_ts_, hdr.ts);
    max_ts_ = std::max<std::uint64_t>(max_ts_, hdr.ts);
  }
  if (hdr.type != VMAT_REC_NOTE) moment_max_ts_ = std::max<std::uint64_t>(moment_max_ts_, hdr.ts);
  ++buffered_records_;
  ++records_;
  record_bytes_ += record.size();
  if (buffer_.size() >= options_.chunk_size) seal();
}

void RecordingWriter::flush() {
  check_usable();
  seal();
}

void RecordingWriter::append_chunk(std::uint16_t type, std::span<const std::byte> payload) {
  check_usable();
  if (payload.size() > kMaxChunkLen) throw RecordingError("chunk payload too large");
  seal();
  auto n = static_cast<std::uint32_t>(payload.size());
  write_chunk(type, payload, n, 0, 0, 0);
}

void RecordingWriter::append_checkpoint(std::span<const std::byte> state) {
  check_usable();
  if (state.size() > kMaxChunkLen) throw RecordingError("checkpoint too large for a chunk");
  seal();
  void* cctx = cctx_ ? cctx_.get() : checkpoint_cctx_.get();
  if (!cctx) {
    checkpoint_cctx_.reset(ZSTD_createCCtx());
    if (!checkpoint_cctx_) throw RecordingError("cannot allocate a zstd compression context");
    cctx = checkpoint_cctx_.get();
  }
  // Always a zstd frame (the reader knows the type by that alone), at the
  // writer's level or level 1 when records are stored raw.
  compressed_.resize(ZSTD_compressBound(state.size()));
  std::size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx), compressed_.data(), compressed_.size(), state.data(),
                                    state.size(), std::max(options_.zstd_level, 1));
  if (ZSTD_isError(n)) throw RecordingError(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  if (n > kMaxChunkLen) throw RecordingError("checkpoint too large for a chunk");
  CheckpointEntry e;
  e.offset = file_bytes_;
  e.ts = moment_max_ts_;  // seal() above: every record appended is before it
  e.seq = next_seq_;
  e.length = static_cast<std::uint32_t>(kChunkHeaderSize + n);
  write_chunk(kChunkCheckpoint, std::span<const std::byte>(compressed_.data(), n),
              static_cast<std::uint32_t>(state.size()), 0, e.ts, e.ts);
  checkpoints_.push_back(e);
  checkpoint_record_bytes_ = record_bytes_;
  checkpoint_file_bytes_ = file_bytes_;
  checkpoint_spacing_ = kCheckpointSpacing * e.length;
}

void RecordingWriter::close(const std::map<std::string, std::string>& totals) {
  if (closed_) return;
  check_usable();
  seal();
  std::map<std::string, std::string> kv = totals;
  if (!checkpoints_.empty()) {
    // The index of the checkpoints, so that a reader finds them from the
    // trailer without walking the chunks.
    std::vector<std::byte> index(kCheckpointIndexHeadSize + checkpoints_.size() * kCheckpointIndexEntrySize);
    store_le<std::uint32_t>(index.data(), kCheckpointIndexVersion);
    store_le<std::uint32_t>(index.data() + 4, static_cast<std::uint32_t>(checkpoints_.size()));
    std::byte* at = index.data() + kCheckpointIndexHeadSize;
    for (const auto& c : checkpoints_) {
      store_le<std::uint64_t>(at + kCiOffset, c.offset);
      store_le<std::uint64_t>(at + kCiTs, c.ts);
      store_le<std::uint32_t>(at + kCiSeq, c.seq);
      store_le<std::uint32_t>(at + kCiLen, c.length);
      at += kCheckpointIndexEntrySize;
    }
    if (index.size() <= kMaxChunkLen) {
      kv[kTrailerCheckpointIndex] = std::to_string(file_bytes_);
      auto len = static_cast<std::uint32_t>(index.size());
      write_chunk(kChunkCheckpointIndex, index, len, 0, 0, 0);
    }
  }
  kv[kTrailerRecords] = std::to_string(records_);
  kv[kTrailerChunks] = std::to_string(chunks_);
  kv[kTrailerBytes] = std::to_string(record_bytes_);
  std::vector<std::byte> payload;
  for (const auto& [k, v] : kv) {
    put_string(payload, k);
    put_string(payload, v);
  }
  auto n = static_cast<std::uint32_t>(payload.size());
  write_chunk(kChunkTrailer, payload, n, 0, 0, 0);
  closed_ = true;
  // close(2) can report deferred write errors (NFS, quotas).
  if (::close(fd_.release()) != 0 && errno != EINTR) throw_errno("closing " + name_, errno);
}

void RecordingWriter::seal() {
  if (buffered_records_ == 0) return;
  auto raw_len = static_cast<std::uint32_t>(buffer_.size());
  std::span<const std::byte> payload = buffer_;
  std::uint16_t type = kChunkRecordsRaw;
  if (cctx_) {
    // The timestamps are delta-coded already (append()).
    compressed_.resize(ZSTD_compressBound(buffer_.size()));
    std::size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_.get()), compressed_.data(), compressed_.size(),
                                      buffer_.data(), buffer_.size(), options_.zstd_level);
    if (ZSTD_isError(n)) throw RecordingError(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
    // Incompressible data is stored as is: never larger than the input.
    if (n < buffer_.size()) {
      payload = std::span<const std::byte>(compressed_.data(), n);
      type = kChunkRecordsZstdDelta;
    } else {
      decode_ts_deltas(buffer_);
    }
  }
  write_chunk(type, payload, raw_len, buffered_records_, min_ts_, max_ts_);
  ++chunks_;
  buffer_.clear();
  buffered_records_ = 0;
}

void RecordingWriter::write_chunk(std::uint16_t type, std::span<const std::byte> payload, std::uint32_t raw_len,
                                  std::uint32_t records, std::uint64_t min_ts, std::uint64_t max_ts) {
  std::byte h[kChunkHeaderSize]{};
  store_le<std::uint32_t>(h + kChMagic, kChunkMagic);
  store_le<std::uint16_t>(h + kChType, type);
  store_le<std::uint16_t>(h + kChHeaderSize, static_cast<std::uint16_t>(kChunkHeaderSize));
  store_le<std::uint32_t>(h + kChRawLen, raw_len);
  store_le<std::uint32_t>(h + kChStoredLen, static_cast<std::uint32_t>(payload.size()));
  store_le<std::uint32_t>(h + kChRecords, records);
  store_le<std::uint32_t>(h + kChPayloadCrc, crc32c(payload));
  store_le<std::uint64_t>(h + kChMinTs, min_ts);
  store_le<std::uint64_t>(h + kChMaxTs, max_ts);
  store_le<std::uint32_t>(h + kChSeq, next_seq_);
  store_le<std::uint32_t>(h + kChHeaderCrc, crc32c(std::span<const std::byte>(h, kChHeaderCrc)));
  write_all(std::span<const std::byte>(h, kChunkHeaderSize));
  write_all(payload);
  ++next_seq_;
}

void RecordingWriter::write_all(std::span<const std::byte> data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      failed_ = true;
      throw_errno("writing " + name_, err);
    }
    if (n == 0) {
      failed_ = true;
      throw RecordingError("writing " + name_ + ": no progress", EIO);
    }
    data = data.subspan(static_cast<std::size_t>(n));
    file_bytes_ += static_cast<std::uint64_t>(n);
  }
}

}  // namespace vmatrace
