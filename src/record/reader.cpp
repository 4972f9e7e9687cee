#include "record/reader.h"

#include "record/checksum.h"
#include "record/ts_delta.h"
#include "util/unique_fd.h"
#include "vmatrace/abi/events.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>

namespace vmatrace {

namespace {

using namespace recfmt;

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Bounds-checked walk over a TLV value; every getter fails rather than
// reading past the end.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> d) : d_(d) {}
  bool empty() const { return pos_ == d_.size(); }
  std::size_t left() const { return d_.size() - pos_; }
  template <typename T>
  bool get(T& v) {
    if (left() < sizeof(T)) return false;
    v = load_le<T>(d_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool get_bytes(std::size_t n, std::span<const std::byte>& out) {
    if (left() < n) return false;
    out = d_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool get_string(std::string& s) {
    std::uint32_t n = 0;
    std::span<const std::byte> b;
    if (!get(n) || !get_bytes(n, b)) return false;
    s.assign(reinterpret_cast<const char*>(b.data()), b.size());
    return true;
  }

 private:
  std::span<const std::byte> d_;
  std::size_t pos_ = 0;
};

std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A string map (header attach modes / extra, trailer). False if malformed.
bool parse_map(std::span<const std::byte> value, std::map<std::string, std::string>& out) {
  Cursor c(value);
  while (!c.empty()) {
    std::string k, v;
    if (!c.get_string(k) || !c.get_string(v)) return false;
    out[std::move(k)] = std::move(v);
  }
  return true;
}

template <typename T>
bool parse_int(std::span<const std::byte> value, T& out) {
  if (value.size() != sizeof(T)) return false;
  out = load_le<T>(value.data());
  return true;
}

// A trailer holds a few short totals: its chunk is well under this.
constexpr std::uint64_t kTrailerTail = 64 * 1024;

// The trailer's map when `tail` (the last bytes of a file) ends with a
// trailer chunk whose checksums hold.
std::optional<std::map<std::string, std::string>> trailer_in_tail(std::span<const std::byte> tail) {
  if (tail.size() < kChunkHeaderSize) return std::nullopt;
  std::byte magic[4];
  store_le<std::uint32_t>(magic, kChunkMagic);
  for (std::size_t at = tail.size() - kChunkHeaderSize + 1; at-- > 0;) {
    const std::byte* h = tail.data() + at;
    if (std::memcmp(h, magic, sizeof(magic)) != 0 || load_le<std::uint16_t>(h + kChType) != kChunkTrailer) continue;
    if (crc32c(std::span<const std::byte>(h, kChHeaderCrc)) != load_le<std::uint32_t>(h + kChHeaderCrc)) continue;
    const std::uint16_t head_size = load_le<std::uint16_t>(h + kChHeaderSize);
    const std::uint32_t stored = load_le<std::uint32_t>(h + kChStoredLen);
    if (head_size < kChunkHeaderSize || load_le<std::uint32_t>(h + kChRawLen) != stored ||
        at + std::uint64_t{head_size} + stored != tail.size())
      continue;  // a trailer is stored as is, and is the file's last bytes
    std::span<const std::byte> body(h + kChunkHeaderSize, head_size - kChunkHeaderSize + stored);
    if (crc32c(body) != load_le<std::uint32_t>(h + kChPayloadCrc)) continue;
    std::map<std::string, std::string> kv;
    if (!parse_map(body.subspan(head_size - kChunkHeaderSize), kv)) continue;
    return kv;
  }
  return std::nullopt;
}

}  // namespace

void RecordingReader::ZstdDctxFree::operator()(void* p) const noexcept { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(p)); }

RecordingReader::RecordingReader(RecordingReader&&) noexcept = default;
RecordingReader& RecordingReader::operator=(RecordingReader&&) noexcept = default;
RecordingReader::~RecordingReader() = default;

RecordingReader RecordingReader::open(const std::string& path, ReaderOptions opts) {
  RecordingReader r;
  r.name_ = path;
  r.opts_ = opts;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw RecordingError("cannot open " + path + ": " + std::strerror(err), err);
  }
  r.fd_.reset(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    throw RecordingError("cannot stat " + path + ": " + std::strerror(err), err);
  }
  // pread and the size checks need a regular file.
  if (!S_ISREG(st.st_mode)) throw RecordingError(path + " is not a regular file");
  r.file_size_ = static_cast<std::uint64_t>(st.st_size);
  r.parse_header();
  return r;
}

RecordingReader RecordingReader::from_memory(std::span<const std::byte> data, std::string name, ReaderOptions opts) {
  RecordingReader r;
  r.name_ = std::move(name);
  r.opts_ = opts;
  r.memory_ = data;
  r.parse_header();
  return r;
}

std::uint64_t RecordingReader::source_size(bool refresh) {
  if (!fd_) return memory_.size();
  // A recording still being written grows; look again before calling it cut short.
  struct stat st {};
  if (refresh && ::fstat(fd_.get(), &st) == 0) file_size_ = static_cast<std::uint64_t>(st.st_size);
  return file_size_;
}

std::span<const std::byte> RecordingReader::read_at(std::uint64_t off, std::size_t n, std::vector<std::byte>& scratch) {
  if (!fd_) {
    if (off >= memory_.size()) return {};
    return memory_.subspan(static_cast<std::size_t>(off),
                           static_cast<std::size_t>(std::min<std::uint64_t>(n, memory_.size() - off)));
  }
  // Callers cap n by the file size, so this allocation is backed by real bytes.
  scratch.resize(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t k = ::pread(fd_.get(), scratch.data() + got, n - got, static_cast<off_t>(off + got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      int err = errno;
      throw RecordingError("reading " + name_ + ": " + std::strerror(err), err);
    }
    if (k == 0) break;  // file shrank under us: treated like a short file
    got += static_cast<std::size_t>(k);
  }
  return std::span<const std::byte>(scratch.data(), got);
}

void RecordingReader::parse_header() {
  std::uint64_t size = source_size(false);
  std::vector<std::byte> scratch;
  auto pre = read_at(0, static_cast<std::size_t>(std::min<std::uint64_t>(size, kPreambleSize)), scratch);
  if (pre.empty()) throw RecordingError(name_ + " is empty: not a vmatrace recording");

  std::size_t magic_n = std::min(pre.size(), kFileMagic.size());
  if (std::memcmp(pre.data(), kFileMagic.data(), magic_n) != 0)
    throw RecordingError(name_ + " is not a vmatrace recording");
  auto truncated_header = [&] {
    return RecordingError(name_ + ": truncated header (the file is only " + std::to_string(size) +
                          " bytes): the recording was cut short before any data");
  };
  if (pre.size() < kPreMinor + 2) throw truncated_header();

  // The version comes first: a newer major may change everything after it.
  header_.format_major = load_le<std::uint16_t>(pre.data() + kPreMajor);
  header_.format_minor = load_le<std::uint16_t>(pre.data() + kPreMinor);
  if (header_.format_major > kFormatMajor)
    throw RecordingError(name_ + " was written by format version " + std::to_string(header_.format_major) + "." +
                         std::to_string(header_.format_minor) + "; this vmatrace reads up to " +
                         std::to_string(kFormatMajor) + ".x: upgrade vmatrace");
  if (header_.format_major == 0) throw RecordingError(name_ + ": corrupt header (format version 0)");
  if (pre.size() < kPreambleSize) throw truncated_header();

  std::uint32_t tlv_len = load_le<std::uint32_t>(pre.data() + kPreHeaderLen);
  std::uint32_t want_crc = load_le<std::uint32_t>(pre.data() + kPreHeaderCrc);
  if (tlv_len > kMaxHeaderLen)
    throw RecordingError(name_ + ": corrupt header (declares " + std::to_string(tlv_len) + " bytes)");
  if (size < kPreambleSize + tlv_len) throw truncated_header();
  std::uint32_t crc = crc32c(pre.first(kPreHeaderCrc));

  std::vector<std::byte> tlv_scratch;
  auto tlv = read_at(kPreambleSize, tlv_len, tlv_scratch);
  if (tlv.size() < tlv_len) throw truncated_header();
  crc = crc32c(tlv, crc);
  if (opts_.verify_checksums && crc != want_crc)
    throw RecordingError(name_ + ": corrupt header (checksum " + hex32(crc) + ", expected " + hex32(want_crc) + ")");

  auto bad = [&](const std::string& why) { return RecordingError(name_ + ": corrupt header: " + why); };
  Cursor c(tlv);
  RecordingHeader& h = header_;
  std::uint8_t byte_order = 1;
  while (!c.empty()) {
    std::uint16_t tag = 0, reserved = 0;
    std::uint32_t len = 0;
    std::span<const std::byte> v;
    if (!c.get(tag) || !c.get(reserved) || !c.get(len) || !c.get_bytes(len, v))
      throw bad("entry runs past the end of the header");
    bool ok = true;
    switch (tag) {
      case kTagVmatraceVersion:
        h.vmatrace_version = as_string(v);
        break;
      case kTagAbiVersion:
        ok = parse_int(v, h.abi_version);
        break;
      case kTagKernelRelease:
        h.kernel_release = as_string(v);
        break;
      case kTagMachine:
        h.machine = as_string(v);
        break;
      case kTagHostname:
        h.hostname = as_string(v);
        break;
      case kTagBootId:
        h.boot_id = as_string(v);
        break;
      case kTagPageSize:
        ok = parse_int(v, h.page_size);
        break;
      case kTagClockMonotonic:
        ok = parse_int(v, h.clock_monotonic_ns);
        break;
      case kTagClockRealtime:
        ok = parse_int(v, h.clock_realtime_ns);
        break;
      case kTagStartTs:
        ok = parse_int(v, h.start_ts);
        break;
      case kTagRecordByteOrder:
        ok = parse_int(v, byte_order) && (byte_order == 1 || byte_order == 2);
        break;
      case kTagCommand: {
        Cursor lc(v);
        while (ok && !lc.empty()) {
          std::string s;
          ok = lc.get_string(s);
          if (ok) h.command.push_back(std::move(s));
        }
        break;
      }
      case kTagPids: {
        ok = v.size() % 4 == 0;
        for (std::size_t i = 0; ok && i < v.size(); i += 4) h.pids.push_back(load_le<std::uint32_t>(v.data() + i));
        break;
      }
      case kTagAttachModes:
        ok = parse_map(v, h.attach_modes);
        break;
      case kTagExtra:
        ok = parse_map(v, h.extra);
        break;
      default:
        break;  // a newer minor's field: ignored by design
    }
    if (!ok) throw bad("malformed field (tag " + std::to_string(tag) + ")");
  }
  h.records_little_endian = byte_order == 1;
  // Records are replayed as host structs; a foreign byte order would be
  // silently misread.
  if (h.records_little_endian != (std::endian::native == std::endian::little))
    throw RecordingError(name_ + " was recorded on a " + std::string(h.records_little_endian ? "little" : "big") +
                         "-endian host; this host cannot replay it");

  data_offset_ = kPreambleSize + tlv_len;
  pos_ = data_offset_;
}

void RecordingReader::finish(ReadStatus::State state, std::string message, std::uint64_t offset) {
  status_.state = state;
  status_.message = std::move(message);
  status_.offset = offset;
  status_.chunks = next_seq_;
}

void RecordingReader::truncated(std::uint64_t offset, const std::string& why) {
  finish(ReadStatus::State::Truncated,
         name_ + ": recording cut short after chunk " + std::to_string(next_seq_) + " at byte offset " +
             std::to_string(offset) + ": " + why,
         offset);
}

void RecordingReader::corrupt(std::uint64_t offset, const std::string& why) {
  finish(ReadStatus::State::Corrupt,
         name_ + ": recording corrupt at byte offset " + std::to_string(offset) + " (chunk " +
             std::to_string(next_seq_ + 1) + "): " + why,
         offset);
}

void RecordingReader::seek(const ChunkInfo& chunk) {
  if (chunk.offset < data_offset_) throw RecordingError(name_ + ": seek before the first chunk");
  pos_ = chunk.offset;
  next_seq_ = chunk.seq;
  records_ = {};
  record_pos_ = 0;
  status_ = ReadStatus{};
}

std::optional<std::span<const std::byte>> RecordingReader::next() {
  while (record_pos_ >= records_.size()) {
    if (status_.state != ReadStatus::State::Reading) return std::nullopt;
    records_ = {};
    record_pos_ = 0;
    if (!load_next_chunk()) return std::nullopt;
  }
  // load_next_chunk() validated every record of the chunk.
  vmat_hdr hdr;
  std::memcpy(&hdr, records_.data() + record_pos_, sizeof hdr);
  auto rec = records_.subspan(record_pos_, hdr.size);
  record_pos_ += hdr.size;
  return rec;
}

std::optional<std::map<std::string, std::string>> RecordingReader::peek_trailer(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t from = size > kTrailerTail ? size - kTrailerTail : 0;
  std::vector<std::byte> tail(static_cast<std::size_t>(size - from));
  if (tail.size() < kChunkHeaderSize ||
      ::pread(fd.get(), tail.data(), tail.size(), static_cast<off_t>(from)) != static_cast<ssize_t>(tail.size()))
    return std::nullopt;
  return trailer_in_tail(tail);
}

// Reads, checks and unpacks the chunk at pos_. Returns true with records_
// set (possibly after skipping chunks that hold none), false with status_
// set at the end of the stream.
bool RecordingReader::load_next_chunk() {
  for (;;) {
    const std::uint64_t off = pos_;
    std::uint64_t size = source_size(false);
    if (off >= size) size = source_size(true);
    if (off >= size) {
      truncated(off, "no end-of-recording trailer (the tracer was killed or its disk filled up)");
      return false;
    }
    std::uint64_t left = size - off;
    auto head = read_at(off, static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunkHeaderSize)), head_buf_);

    // Judge the magic on what is there, so that garbage is "corrupt"
    // even when it is also short.
    std::byte magic[4];
    store_le<std::uint32_t>(magic, kChunkMagic);
    if (std::memcmp(head.data(), magic, std::min<std::size_t>(head.size(), 4)) != 0) {
      corrupt(off, "bad chunk magic");
      return false;
    }
    if (head.size() < kChunkHeaderSize) {
      truncated(off, "the file ends inside chunk " + std::to_string(next_seq_ + 1) + "'s header (" +
                         std::to_string(head.size()) + " of " + std::to_string(kChunkHeaderSize) + " bytes)");
      return false;
    }
    std::uint32_t want_hcrc = load_le<std::uint32_t>(head.data() + kChHeaderCrc);
    std::uint32_t hcrc = crc32c(head.first(kChHeaderCrc));
    if (opts_.verify_checksums && hcrc != want_hcrc) {
      corrupt(off, "chunk header checksum mismatch (" + hex32(hcrc) + ", expected " + hex32(want_hcrc) + ")");
      return false;
    }
    // The header is now trustworthy; copy it out before head_buf_ is reused.
    ChunkInfo ci;
    ci.offset = off;
    ci.type = load_le<std::uint16_t>(head.data() + kChType);
    const std::uint16_t head_size = load_le<std::uint16_t>(head.data() + kChHeaderSize);
    ci.raw_len = load_le<std::uint32_t>(head.data() + kChRawLen);
    ci.stored_len = load_le<std::uint32_t>(head.data() + kChStoredLen);
    ci.records = load_le<std::uint32_t>(head.data() + kChRecords);
    const std::uint32_t want_pcrc = load_le<std::uint32_t>(head.data() + kChPayloadCrc);
    ci.min_ts = load_le<std::uint64_t>(head.data() + kChMinTs);
    ci.max_ts = load_le<std::uint64_t>(head.data() + kChMaxTs);
    ci.seq = load_le<std::uint32_t>(head.data() + kChSeq);

    if (head_size < kChunkHeaderSize || head_size > kMaxChunkHeaderSize) {
      corrupt(off, "impossible chunk header size " + std::to_string(head_size));
      return false;
    }
    if (ci.stored_len > kMaxChunkLen || ci.raw_len > kMaxChunkLen) {
      corrupt(off, "chunk length over the " + std::to_string(kMaxChunkLen) + "-byte limit");
      return false;
    }
    if (ci.seq != next_seq_) {
      corrupt(off, "chunk out of sequence (number " + std::to_string(ci.seq) + ", expected " +
                       std::to_string(next_seq_) + ")");
      return false;
    }
    const std::uint64_t total = std::uint64_t{head_size} + ci.stored_len;
    if (left < total) size = source_size(true), left = size - off;
    if (left < total) {
      truncated(off, "the file ends inside chunk " + std::to_string(next_seq_ + 1) + " (" + std::to_string(left) +
                         " of its " + std::to_string(total) + " bytes are present)");
      return false;
    }
    // Extra header bytes (a newer minor's) and the payload, in one read:
    // the payload checksum covers both.
    const std::size_t ext = head_size - kChunkHeaderSize;
    auto body = read_at(off + kChunkHeaderSize, ext + ci.stored_len, stored_buf_);
    if (body.size() < ext + ci.stored_len) {
      truncated(off, "the file shrank while being read");
      return false;
    }
    std::uint32_t pcrc = crc32c(body);
    if (opts_.verify_checksums && pcrc != want_pcrc) {
      corrupt(off, "chunk payload checksum mismatch (" + hex32(pcrc) + ", expected " + hex32(want_pcrc) + ")");
      return false;
    }
    auto payload = body.subspan(ext);

    std::span<const std::byte> recs;
    switch (ci.type) {
      case kChunkRecordsRaw:
        if (ci.raw_len != ci.stored_len) {
          corrupt(off, "uncompressed chunk with differing lengths");
          return false;
        }
        recs = payload;
        break;
      case kChunkRecordsZstd:
      case kChunkRecordsZstdDelta: {
        // The frame must declare exactly the size the chunk header does,
        // and decompression is into a buffer of that size only.
        unsigned long long fsize = ZSTD_getFrameContentSize(payload.data(), payload.size());
        if (fsize != ci.raw_len) {
          corrupt(off, "zstd frame size does not match the chunk header");
          return false;
        }
        if (!dctx_) {
          dctx_.reset(ZSTD_createDCtx());
          if (!dctx_) throw RecordingError("cannot allocate a zstd decompression context");
        }
        raw_buf_.resize(ci.raw_len);
        std::size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_.get()), raw_buf_.data(), raw_buf_.size(),
                                            payload.data(), payload.size());
        if (ZSTD_isError(n) || n != ci.raw_len) {
          corrupt(off, std::string("zstd: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output"));
          return false;
        }
        // Delta-coded timestamps are decoded in the framing check below.
        recs = std::span<const std::byte>(raw_buf_.data(), n);
        break;
      }
      case kChunkTrailer: {
        std::map<std::string, std::string> kv;
        if (ci.raw_len != ci.stored_len || !parse_map(payload, kv)) {
          corrupt(off, "malformed end-of-recording trailer");
          return false;
        }
        trailer_ = std::move(kv);
        ++next_seq_;
        pos_ = off + total;
        std::uint64_t end = source_size(false);
        if (pos_ < end)
          notes_.push_back(name_ + ": " + std::to_string(end - pos_) +
                           " bytes after the end-of-recording trailer ignored");
        finish(ReadStatus::State::Clean, name_ + ": complete recording", off);
        return false;
      }
      case kChunkCheckpoint:
      case kChunkCheckpointIndex:
        // For seeking (checkpoints()); a reader from the start needs neither.
        ++next_seq_;
        pos_ = off + total;
        continue;
      default:
        notes_.push_back(name_ + ": skipped chunk of unknown type " + std::to_string(ci.type) + " at byte offset " +
                         std::to_string(off) + " (" + std::to_string(total) + " bytes; written by a newer vmatrace?)");
        ++next_seq_;
        pos_ = off + total;
        continue;
    }

    // Check the record framing and the header's claims before yielding
    // anything, so that a chunk is replayed whole or not at all. Delta-coded
    // timestamps (record/ts_delta.h) become absolute in the same pass, each
    // before its record's time range is checked.
    std::byte* const delta = ci.type == kChunkRecordsZstdDelta ? raw_buf_.data() : nullptr;
    std::uint64_t prev_ts = 0;
    std::size_t at = 0;
    std::uint32_t count = 0;
    while (at < recs.size()) {
      if (recs.size() - at < sizeof(vmat_hdr)) {
        corrupt(off, "record " + std::to_string(count + 1) + " is cut off at the chunk's end");
        return false;
      }
      vmat_hdr hdr;
      std::memcpy(&hdr, recs.data() + at, sizeof hdr);
      if (hdr.size < sizeof(vmat_hdr) || hdr.size > recs.size() - at) {
        corrupt(off, "record " + std::to_string(count + 1) + " has impossible size " + std::to_string(hdr.size));
        return false;
      }
      if (delta) hdr.ts = prev_ts = decode_ts_delta(std::span<std::byte>(delta + at, hdr.size), hdr.type, prev_ts);
      if (hdr.ts < ci.min_ts || hdr.ts > ci.max_ts) {
        corrupt(off, "record " + std::to_string(count + 1) + " lies outside the chunk's time range");
        return false;
      }
      at += hdr.size;
      ++count;
    }
    if (count != ci.records) {
      corrupt(off, "chunk holds " + std::to_string(count) + " records, its header says " + std::to_string(ci.records));
      return false;
    }
    if (index_.empty() || index_.back().offset < off) index_.push_back(ci);
    ++next_seq_;
    pos_ = off + total;
    if (count == 0) continue;
    records_ = recs;
    record_pos_ = 0;
    return true;
  }
}

}  // namespace vmatrace

namespace vmatrace {

namespace {

// The fields of a chunk header whose magic and header checksum hold, with
// the sizes in their bounds; std::nullopt otherwise.
std::optional<ChunkInfo> checked_chunk_header(std::span<const std::byte> head, std::uint64_t off, bool verify,
                                              std::uint16_t* head_size) {
  using namespace recfmt;
  if (head.size() < kChunkHeaderSize || load_le<std::uint32_t>(head.data() + kChMagic) != kChunkMagic)
    return std::nullopt;
  if (verify && crc32c(head.first(kChHeaderCrc)) != load_le<std::uint32_t>(head.data() + kChHeaderCrc))
    return std::nullopt;
  ChunkInfo ci;
  ci.offset = off;
  ci.type = load_le<std::uint16_t>(head.data() + kChType);
  *head_size = load_le<std::uint16_t>(head.data() + kChHeaderSize);
  ci.raw_len = load_le<std::uint32_t>(head.data() + kChRawLen);
  ci.stored_len = load_le<std::uint32_t>(head.data() + kChStoredLen);
  ci.records = load_le<std::uint32_t>(head.data() + kChRecords);
  ci.min_ts = load_le<std::uint64_t>(head.data() + kChMinTs);
  ci.max_ts = load_le<std::uint64_t>(head.data() + kChMaxTs);
  ci.seq = load_le<std::uint32_t>(head.data() + kChSeq);
  if (*head_size < kChunkHeaderSize || *head_size > kMaxChunkHeaderSize || ci.stored_len > kMaxChunkLen ||
      ci.raw_len > kMaxChunkLen)
    return std::nullopt;
  return ci;
}

}  // namespace

std::optional<std::vector<CheckpointEntry>> RecordingReader::checkpoint_index() {
  using namespace recfmt;
  const std::uint64_t size = source_size(true);
  const std::uint64_t from = size > kTrailerTail ? size - kTrailerTail : 0;
  std::vector<std::byte> scratch;
  auto tail = read_at(from, static_cast<std::size_t>(size - from), scratch);
  auto trailer = trailer_in_tail(tail);
  if (!trailer) return std::nullopt;
  auto it = trailer->find(kTrailerCheckpointIndex);
  if (it == trailer->end()) return std::vector<CheckpointEntry>{};  // a complete file without checkpoints
  std::uint64_t off = 0;
  try {
    std::size_t used = 0;
    off = std::stoull(it->second, &used);
    if (used != it->second.size()) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (off < data_offset_ || off >= size) return std::nullopt;
  std::vector<std::byte> head_scratch;
  auto head = read_at(off, kChunkHeaderSize, head_scratch);
  std::uint16_t head_size = 0;
  auto ci = checked_chunk_header(head, off, opts_.verify_checksums, &head_size);
  if (!ci || ci->type != kChunkCheckpointIndex || ci->raw_len != ci->stored_len) return std::nullopt;
  if (off + head_size + ci->stored_len > size) return std::nullopt;
  const std::uint32_t want_pcrc = load_le<std::uint32_t>(head.data() + kChPayloadCrc);
  std::vector<std::byte> body_scratch;
  auto body = read_at(off + kChunkHeaderSize, head_size - kChunkHeaderSize + ci->stored_len, body_scratch);
  if (body.size() != head_size - kChunkHeaderSize + ci->stored_len) return std::nullopt;
  if (opts_.verify_checksums && crc32c(body) != want_pcrc) return std::nullopt;
  auto payload = body.subspan(head_size - kChunkHeaderSize);
  if (payload.size() < kCheckpointIndexHeadSize || load_le<std::uint32_t>(payload.data()) != kCheckpointIndexVersion)
    return std::nullopt;
  const std::uint32_t count = load_le<std::uint32_t>(payload.data() + 4);
  if (payload.size() != kCheckpointIndexHeadSize + std::uint64_t{count} * kCheckpointIndexEntrySize)
    return std::nullopt;
  std::vector<CheckpointEntry> out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; i++) {
    const std::byte* e = payload.data() + kCheckpointIndexHeadSize + i * kCheckpointIndexEntrySize;
    CheckpointEntry c;
    c.offset = load_le<std::uint64_t>(e + kCiOffset);
    c.ts = load_le<std::uint64_t>(e + kCiTs);
    c.seq = load_le<std::uint32_t>(e + kCiSeq);
    c.length = load_le<std::uint32_t>(e + kCiLen);
    // In file order, before the index, none overlapping the next.
    if (c.offset < data_offset_ || c.offset + c.length > off) return std::nullopt;
    if (!out.empty() && (c.offset < out.back().offset + out.back().length || c.seq <= out.back().seq))
      return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::vector<CheckpointEntry> RecordingReader::checkpoints(bool use_index) {
  using namespace recfmt;
  if (use_index)
    if (auto index = checkpoint_index()) return std::move(*index);
  // No index (cut short, damaged, written before 2.1): walk the headers.
  std::vector<CheckpointEntry> out;
  const std::uint64_t size = source_size(true);
  std::uint64_t off = data_offset_;
  std::uint32_t seq = 0;
  std::vector<std::byte> scratch;
  while (off < size) {
    auto head = read_at(off, kChunkHeaderSize, scratch);
    std::uint16_t head_size = 0;
    auto ci = checked_chunk_header(head, off, opts_.verify_checksums, &head_size);
    if (!ci || ci->seq != seq) break;
    const std::uint64_t total = std::uint64_t{head_size} + ci->stored_len;
    if (off + total > size) break;  // cut short inside it
    if (ci->type == kChunkCheckpoint) out.push_back({off, ci->max_ts, ci->seq, static_cast<std::uint32_t>(total)});
    if (ci->type == kChunkTrailer) break;
    off += total;
    seq++;
  }
  return out;
}

std::optional<std::vector<std::byte>> RecordingReader::read_checkpoint(const CheckpointEntry& c, std::string* why) {
  using namespace recfmt;
  auto fail = [&](const std::string& w) -> std::optional<std::vector<std::byte>> {
    if (why) *why = name_ + ": checkpoint at byte offset " + std::to_string(c.offset) + ": " + w;
    return std::nullopt;
  };
  std::vector<std::byte> head_scratch;
  auto head = read_at(c.offset, kChunkHeaderSize, head_scratch);
  std::uint16_t head_size = 0;
  auto ci = checked_chunk_header(head, c.offset, opts_.verify_checksums, &head_size);
  if (!ci) return fail("bad chunk header");
  if (ci->type != kChunkCheckpoint || ci->seq != c.seq || head_size + std::uint64_t{ci->stored_len} != c.length)
    return fail("not the checkpoint the index names");
  const std::uint32_t want_pcrc = load_le<std::uint32_t>(head.data() + kChPayloadCrc);
  const std::size_t ext = head_size - kChunkHeaderSize;
  auto body = read_at(c.offset + kChunkHeaderSize, ext + ci->stored_len, stored_buf_);
  if (body.size() != ext + ci->stored_len) return fail("cut short");
  if (opts_.verify_checksums && crc32c(body) != want_pcrc) return fail("payload checksum mismatch");
  auto payload = body.subspan(ext);
  if (ZSTD_getFrameContentSize(payload.data(), payload.size()) != ci->raw_len)
    return fail("zstd frame size does not match the chunk header");
  if (!dctx_) {
    dctx_.reset(ZSTD_createDCtx());
    if (!dctx_) throw RecordingError("cannot allocate a zstd decompression context");
  }
  std::vector<std::byte> state(ci->raw_len);
  std::size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_.get()), state.data(), state.size(), payload.data(),
                                      payload.size());
  if (ZSTD_isError(n) || n != ci->raw_len)
    return fail(std::string("zstd: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output"));
  return state;
}

void RecordingReader::seek_after(const CheckpointEntry& c) {
  if (c.offset < data_offset_) throw RecordingError(name_ + ": seek before the first chunk");
  pos_ = c.offset + c.length;
  next_seq_ = c.seq + 1;
  records_ = {};
  record_pos_ = 0;
  status_ = ReadStatus{};
}

}  // namespace vmatrace
