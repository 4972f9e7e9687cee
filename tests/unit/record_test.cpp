// Recording format: round trips, damage handling, file safety, ratio.
#include "record/checksum.h"
#include "record/format.h"
#include "record/reader.h"
#include "record/ts_delta.h"
#include "record/writer.h"
#include "vmatrace/abi/events.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace vmatrace {
namespace {

namespace fs = std::filesystem;
using namespace recfmt;
using Bytes = std::vector<std::byte>;

// --- helpers -----------------------------------------------------------------

Bytes make_record(std::uint32_t type, std::size_t size, std::uint64_t ts, std::mt19937_64& rng) {
  Bytes r(size);
  vmat_hdr h{};
  h.type = type;
  h.size = static_cast<std::uint32_t>(size);
  h.ts = ts;
  h.pid = 1234;
  h.tid = 1235 + static_cast<std::uint32_t>(ts % 3);
  std::memcpy(h.comm, "workload", 9);
  std::memcpy(r.data(), &h, sizeof h);
  for (std::size_t i = sizeof h; i < size; ++i) r[i] = static_cast<std::byte>(rng());
  return r;
}

std::vector<Bytes> random_records(std::size_t n, std::size_t min_size, std::size_t max_size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> size(min_size, max_size);
  std::vector<Bytes> out;
  std::uint64_t ts = 1'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    ts += rng() % 5000;
    out.push_back(make_record(1 + static_cast<std::uint32_t>(rng() % 6), size(rng), ts, rng));
  }
  return out;
}

RecordingHeader sample_header() {
  RecordingHeader h;
  fill_host_info(h);
  h.vmatrace_version = "0.1.0-test";
  h.command = {"/usr/bin/app", "--flag", "", "arg with spaces", "ünïcödé"};
  h.pids = {42, 4242, 0xfffffffe};
  h.attach_modes = {{"syscalls", "tracepoint"}, {"faults", "kprobe"}};
  h.extra = {{"note", "hello"}, {"empty", ""}};
  return h;
}

Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(c.size());
  if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());
  return b;
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vmat_record_test.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

struct Recording {
  Bytes bytes;
  std::vector<Bytes> records;
};

// Writes `records` into a recording and returns its bytes.
Recording write_recording(const std::vector<Bytes>& records, WriterOptions opt = {},
                          const RecordingHeader& header = sample_header()) {
  TempDir dir;
  auto path = dir / "rec.vmat";
  {
    RecordingWriter w(path.string(), header, opt);
    for (const auto& r : records) w.append(r);
    w.close({{"lost", "7"}});
  }
  return {read_file(path), records};
}

std::vector<Bytes> read_all(RecordingReader& r) {
  std::vector<Bytes> out;
  while (auto rec = r.next()) out.emplace_back(rec->begin(), rec->end());
  return out;
}

std::span<const std::byte> as_span(const Bytes& b) { return std::span<const std::byte>(b.data(), b.size()); }

// A chunk built by hand, with valid checksums, for format-evolution tests.
Bytes make_chunk(std::uint16_t type, std::uint32_t seq, const Bytes& payload, std::uint32_t raw_len,
                 std::uint32_t records, std::uint64_t min_ts, std::uint64_t max_ts, std::size_t ext = 0) {
  Bytes c(kChunkHeaderSize + ext);
  store_le<std::uint32_t>(c.data() + kChMagic, kChunkMagic);
  store_le<std::uint16_t>(c.data() + kChType, type);
  store_le<std::uint16_t>(c.data() + kChHeaderSize, static_cast<std::uint16_t>(kChunkHeaderSize + ext));
  store_le<std::uint32_t>(c.data() + kChRawLen, raw_len);
  store_le<std::uint32_t>(c.data() + kChStoredLen, static_cast<std::uint32_t>(payload.size()));
  store_le<std::uint32_t>(c.data() + kChRecords, records);
  store_le<std::uint64_t>(c.data() + kChMinTs, min_ts);
  store_le<std::uint64_t>(c.data() + kChMaxTs, max_ts);
  store_le<std::uint32_t>(c.data() + kChSeq, seq);
  for (std::size_t i = 0; i < ext; ++i) c[kChunkHeaderSize + i] = std::byte{0xab};
  c.insert(c.end(), payload.begin(), payload.end());
  std::uint32_t pcrc = crc32c(std::span<const std::byte>(c.data() + kChunkHeaderSize, ext + payload.size()));
  store_le<std::uint32_t>(c.data() + kChPayloadCrc, pcrc);
  store_le<std::uint32_t>(c.data() + kChHeaderCrc, crc32c(std::span<const std::byte>(c.data(), kChHeaderCrc)));
  return c;
}

Bytes concat(const std::vector<Bytes>& rs) {
  Bytes out;
  for (const auto& r : rs) out.insert(out.end(), r.begin(), r.end());
  return out;
}

Bytes trailer_chunk(std::uint32_t seq) {
  Bytes kv;
  for (std::string s : {"records", "0"}) {
    append_le<std::uint32_t>(kv, static_cast<std::uint32_t>(s.size()));
    for (char ch : s) kv.push_back(static_cast<std::byte>(ch));
  }
  return make_chunk(kChunkTrailer, seq, kv, static_cast<std::uint32_t>(kv.size()), 0, 0, 0);
}

// --- checksum ----------------------------------------------------------------

TEST(RecordChecksum, Crc32cKnownVectors) {
  auto crc_of = [](const std::string& s) {
    return crc32c(std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size()));
  };
  EXPECT_EQ(crc_of(""), 0u);
  EXPECT_EQ(crc_of("123456789"), 0xe3069283u);
  // Incremental equals one-shot, across the 8-byte fast path boundary.
  std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
  auto whole = crc_of(s);
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    auto a = crc_of(s.substr(0, cut));
    auto b = crc32c(std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()) + cut, s.size() - cut), a);
    EXPECT_EQ(b, whole) << cut;
  }
}

// --- round trips -------------------------------------------------------------

TEST(Record, RoundTripManyRecordsAcrossChunks) {
  auto recs = random_records(20000, sizeof(vmat_hdr), 700, 1);
  WriterOptions opt;
  opt.chunk_size = 64 << 10;
  auto rec = write_recording(recs, opt);
  auto r = RecordingReader::from_memory(as_span(rec.bytes), "rec.vmat");
  auto got = read_all(r);
  ASSERT_EQ(got.size(), recs.size());
  EXPECT_TRUE(got == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean) << r.status().message;
  EXPECT_GT(r.chunks().size(), 20u);
  EXPECT_EQ(r.trailer().at("records"), std::to_string(recs.size()));
  EXPECT_EQ(r.trailer().at("chunks"), std::to_string(r.chunks().size()));
  EXPECT_EQ(r.trailer().at("lost"), "7");
  EXPECT_TRUE(r.notes().empty());
  // The index is consistent with the records.
  std::uint64_t n = 0;
  for (const auto& c : r.chunks()) {
    EXPECT_LE(c.min_ts, c.max_ts);
    EXPECT_LE(c.raw_len, opt.chunk_size);
    n += c.records;
  }
  EXPECT_EQ(n, recs.size());
}

TEST(Record, RoundTripFromFileAndUncompressed) {
  auto recs = random_records(3000, sizeof(vmat_hdr), 300, 2);
  TempDir dir;
  auto path = dir / "raw.vmat";
  WriterOptions opt;
  opt.zstd_level = 0;
  opt.chunk_size = 16 << 10;
  {
    RecordingWriter w(path.string(), sample_header(), opt);
    for (const auto& x : recs) w.append(x);
    w.close();
  }
  auto r = RecordingReader::open(path.string());
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  for (const auto& c : r.chunks()) EXPECT_EQ(c.type, kChunkRecordsRaw);
}

TEST(Record, PeekTrailerReadsTheTotalsFromTheEndOnly) {
  auto recs = random_records(5000, sizeof(vmat_hdr), 300, 3);
  TempDir dir;
  auto path = dir / "rec.vmat";
  {
    RecordingWriter w(path.string(), sample_header());
    for (const auto& x : recs) w.append(x);
    w.close({{"lost", "7"}, {"end_ts", "12345"}});
  }
  auto kv = RecordingReader::peek_trailer(path.string());
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->at("lost"), "7");
  EXPECT_EQ(kv->at("end_ts"), "12345");
  EXPECT_EQ(kv->at("records"), "5000");
  // The same map the reader finds at the end of the stream.
  auto r = RecordingReader::open(path.string());
  read_all(r);
  EXPECT_EQ(*kv, r.trailer());
  const Bytes whole = read_file(path);
  // Cut short: no trailer, whatever the cut.
  for (size_t cut : {size_t{1}, size_t{10}, size_t{60}, whole.size() / 2}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(whole.data()), static_cast<std::streamsize>(whole.size() - cut));
    EXPECT_FALSE(RecordingReader::peek_trailer(path.string())) << "cut " << cut;
  }
  // Bytes after the trailer: not the file's end, so not taken.
  Bytes longer = whole;
  longer.push_back(std::byte{0});
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(longer.data()), static_cast<std::streamsize>(longer.size()));
  EXPECT_FALSE(RecordingReader::peek_trailer(path.string()));
  // A flipped byte in the trailer's totals fails its checksum.
  Bytes flipped = whole;
  flipped[flipped.size() - 3] ^= std::byte{1};
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(flipped.data()), static_cast<std::streamsize>(flipped.size()));
  EXPECT_FALSE(RecordingReader::peek_trailer(path.string()));
  EXPECT_FALSE(RecordingReader::peek_trailer((dir / "missing.vmat").string()));
}

TEST(Record, IncompressibleChunkStoredRaw) {
  // Random payloads do not compress: the writer must not grow them.
  auto recs = random_records(200, 4000, 4000, 3);
  auto rec = write_recording(recs);
  auto r = RecordingReader::from_memory(as_span(rec.bytes));
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_LT(rec.bytes.size(), 200u * 4000u + 4096u);
}

// Records as the tracer makes them: a clock that advances by microseconds,
// syscalls with their enter_ts, and payloads that compress.
std::vector<Bytes> clocked_records(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Bytes> out;
  std::uint64_t ts = 5'000'000'000'000ull;
  for (std::size_t i = 0; i < n; ++i) {
    ts += 500 + rng() % 3000;
    const bool syscall = i % 3 != 2;
    Bytes r = make_record(syscall ? (i % 2 ? VMAT_EV_SYSCALL : VMAT_EV_SYSCALL_STORES) : VMAT_EV_FAULT,
                          syscall ? sizeof(vmat_syscall_event) + 40 : sizeof(vmat_fault_event), ts, rng);
    std::fill(r.begin() + sizeof(vmat_hdr), r.end(), std::byte{0});
    if (syscall) {
      const std::uint64_t enter = ts - 200 - rng() % 800;
      std::memcpy(r.data() + offsetof(vmat_syscall_event, enter_ts), &enter, sizeof enter);
    }
    out.push_back(std::move(r));
  }
  return out;
}

TEST(RecordTsDelta, EncodeDecodeRestoresEveryByte) {
  auto recs = clocked_records(500, 21);
  auto more = random_records(500, sizeof(vmat_hdr), 300, 22);  // every type, odd sizes
  recs.insert(recs.end(), more.begin(), more.end());
  const Bytes orig = concat(recs);
  Bytes b = orig;
  encode_ts_deltas(b);
  EXPECT_NE(b, orig);
  // The framing fields stay where the reader checks them.
  vmat_hdr first, second;
  std::memcpy(&first, b.data(), sizeof first);
  std::memcpy(&second, b.data() + recs[0].size(), sizeof second);
  EXPECT_EQ(first.size, recs[0].size());
  EXPECT_EQ(second.size, recs[1].size());
  vmat_hdr o0, o1;
  std::memcpy(&o0, orig.data(), sizeof o0);
  std::memcpy(&o1, orig.data() + recs[0].size(), sizeof o1);
  EXPECT_EQ(first.ts, o0.ts);           // from 0
  EXPECT_EQ(second.ts, o1.ts - o0.ts);  // from the previous record
  decode_ts_deltas(b);
  EXPECT_EQ(b, orig);
}

TEST(RecordTsDelta, StopsAtImpossibleFramingAndLeavesTheRest) {
  auto recs = clocked_records(4, 23);
  Bytes b = concat(recs);
  // The third record claims to run past the end.
  const std::size_t third = recs[0].size() + recs[1].size();
  const std::uint32_t bad = 1u << 30;
  std::memcpy(b.data() + third + offsetof(vmat_hdr, size), &bad, sizeof bad);
  const Bytes orig = b;
  encode_ts_deltas(b);
  EXPECT_TRUE(std::equal(b.begin() + static_cast<std::ptrdiff_t>(third), b.end(),
                         orig.begin() + static_cast<std::ptrdiff_t>(third)));
  decode_ts_deltas(b);
  EXPECT_EQ(b, orig);
}

TEST(Record, CompressedChunksCarryTimestampDeltasAndReadBackExactly) {
  auto recs = clocked_records(30000, 24);
  WriterOptions opt;
  opt.chunk_size = 256 << 10;
  auto rec = write_recording(recs, opt);
  auto r = RecordingReader::from_memory(as_span(rec.bytes), "rec.vmat");
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean) << r.status().message;
  ASSERT_GT(r.chunks().size(), 3u);
  for (const auto& c : r.chunks()) {
    EXPECT_EQ(c.type, kChunkRecordsZstdDelta);
    EXPECT_LT(c.min_ts, c.max_ts);  // the index keeps absolute times
  }
  EXPECT_EQ(r.header().format_major, kFormatMajor);
  // Smaller than the same records with absolute timestamps.
  std::size_t plain = 0;
  Bytes all = concat(recs);
  for (std::size_t at = 0; at < all.size(); at += opt.chunk_size) {
    const std::size_t len = std::min(opt.chunk_size, all.size() - at);
    Bytes z(ZSTD_compressBound(len));
    plain += ZSTD_compress(z.data(), z.size(), all.data() + at, len, kDefaultZstdLevel);
  }
  EXPECT_LT(rec.bytes.size(), plain);
  std::printf("[ ratio    ] %zu clocked records: %.2f bytes/record with deltas, %.2f without\n", recs.size(),
              double(rec.bytes.size()) / double(recs.size()), double(plain) / double(recs.size()));
}

TEST(Record, Format1ZstdChunksWithAbsoluteTimestampsStillRead) {
  Bytes file = encode_recording_header(sample_header(), 1, 0);
  auto recs = clocked_records(300, 25);
  Bytes payload = concat(recs);
  Bytes z(ZSTD_compressBound(payload.size()));
  z.resize(ZSTD_compress(z.data(), z.size(), payload.data(), payload.size(), 1));
  vmat_hdr a, b;
  std::memcpy(&a, recs.front().data(), sizeof a);
  std::memcpy(&b, recs.back().data(), sizeof b);
  for (const auto& c :
       {make_chunk(kChunkRecordsZstd, 0, z, static_cast<std::uint32_t>(payload.size()), 300, a.ts, b.ts),
        trailer_chunk(1)})
    file.insert(file.end(), c.begin(), c.end());
  auto r = RecordingReader::from_memory(as_span(file), "old.vmat");
  EXPECT_EQ(r.header().format_major, 1);
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean) << r.status().message;
}

TEST(Record, HeaderFieldsRoundTrip) {
  auto h = sample_header();
  h.extra["k\0ey"] = std::string("v\0al", 4);
  auto rec = write_recording({}, {}, h);
  auto r = RecordingReader::from_memory(as_span(rec.bytes));
  const auto& g = r.header();
  EXPECT_EQ(g.format_major, kFormatMajor);
  EXPECT_EQ(g.format_minor, kFormatMinor);
  EXPECT_EQ(g.vmatrace_version, h.vmatrace_version);
  EXPECT_EQ(g.abi_version, static_cast<std::uint32_t>(VMAT_ABI_VERSION));
  EXPECT_EQ(g.kernel_release, h.kernel_release);
  EXPECT_FALSE(g.kernel_release.empty());
  EXPECT_EQ(g.machine, h.machine);
  EXPECT_EQ(g.hostname, h.hostname);
  EXPECT_EQ(g.boot_id, h.boot_id);
  EXPECT_EQ(g.page_size, h.page_size);
  EXPECT_EQ(g.clock_monotonic_ns, h.clock_monotonic_ns);
  EXPECT_EQ(g.clock_realtime_ns, h.clock_realtime_ns);
  EXPECT_EQ(g.start_ts, h.start_ts);
  EXPECT_EQ(g.command, h.command);
  EXPECT_EQ(g.pids, h.pids);
  EXPECT_EQ(g.attach_modes, h.attach_modes);
  EXPECT_EQ(g.extra, h.extra);
  EXPECT_TRUE(g.records_little_endian);
  // No records at all is still a clean recording.
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
}

TEST(Record, WorksOnAPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd rd(p[0]);
  auto recs = random_records(50, 40, 200, 4);
  {
    RecordingWriter w(UniqueFd(p[1]), "<pipe>", sample_header());
    for (const auto& x : recs) w.append(x);
    w.close();
  }
  Bytes buf(1 << 16);
  std::size_t n = 0;
  for (ssize_t k; (k = ::read(rd.get(), buf.data() + n, buf.size() - n)) > 0;) n += static_cast<std::size_t>(k);
  buf.resize(n);
  auto r = RecordingReader::from_memory(as_span(buf));
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
}

TEST(Record, FlushMakesRecordsReadableWhileWriting) {
  TempDir dir;
  auto path = dir / "live.vmat";
  auto recs = random_records(100, 40, 100, 5);
  RecordingWriter w(path.string(), sample_header());
  for (const auto& x : recs) w.append(x);
  w.flush();
  w.flush();  // nothing buffered: no empty chunk
  auto r = RecordingReader::open(path.string());
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Truncated);
  EXPECT_NE(r.status().message.find("no end-of-recording trailer"), std::string::npos) << r.status().message;
  EXPECT_EQ(r.chunks().size(), 1u);
  // A reader that hits the end re-checks the size: more data shows up.
  w.close();
  auto r2 = RecordingReader::open(path.string());
  read_all(r2);
  EXPECT_EQ(r2.status().state, ReadStatus::State::Clean);
}

TEST(Record, DestructorWithoutCloseKeepsRecords) {
  TempDir dir;
  auto path = dir / "dtor.vmat";
  auto recs = random_records(100, 40, 100, 6);
  {
    RecordingWriter w(path.string(), sample_header());
    for (const auto& x : recs) w.append(x);
  }
  auto r = RecordingReader::open(path.string());
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Truncated);
}

TEST(Record, MalformedRecordRejected) {
  TempDir dir;
  RecordingWriter w((dir / "bad.vmat").string(), sample_header());
  Bytes tiny(10);
  EXPECT_THROW(w.append(tiny), RecordingError);
  std::mt19937_64 rng(7);
  auto rec = make_record(1, 64, 1, rng);
  rec.push_back(std::byte{0});  // size field now disagrees
  EXPECT_THROW(w.append(rec), RecordingError);
}

TEST(Record, SeekToIndexedChunk) {
  auto recs = random_records(2000, 40, 400, 8);
  WriterOptions opt;
  opt.chunk_size = 8 << 10;
  auto rec = write_recording(recs, opt);
  auto r = RecordingReader::from_memory(as_span(rec.bytes));
  read_all(r);
  auto index = r.chunks();
  ASSERT_GT(index.size(), 5u);
  std::size_t skip = 0;
  for (std::size_t i = 0; i < 3; ++i) skip += index[i].records;
  r.seek(index[3]);
  auto tail = read_all(r);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  ASSERT_EQ(tail.size(), recs.size() - skip);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), recs.begin() + static_cast<std::ptrdiff_t>(skip)));
  EXPECT_EQ(r.chunks().size(), index.size());  // not listed twice
}

// --- format evolution --------------------------------------------------------

TEST(Record, UnknownChunkTypeSkipped) {
  TempDir dir;
  auto path = dir / "unknown.vmat";
  auto recs = random_records(30, 40, 100, 9);
  {
    RecordingWriter w(path.string(), sample_header());
    for (std::size_t i = 0; i < 15; ++i) w.append(recs[i]);
    Bytes blob(100, std::byte{0x5a});
    w.append_chunk(77, blob);
    for (std::size_t i = 15; i < 30; ++i) w.append(recs[i]);
    w.close();
  }
  auto r = RecordingReader::open(path.string());
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  ASSERT_EQ(r.notes().size(), 1u);
  EXPECT_NE(r.notes()[0].find("unknown type 77"), std::string::npos) << r.notes()[0];
}

TEST(Record, NewerMinorWithExtensionsIsRead) {
  auto h = sample_header();
  Bytes file = encode_recording_header(h, kFormatMajor, kFormatMinor + 5);
  // Append an unknown header tag and fix the length and checksum.
  Bytes tlv(file.begin() + kPreambleSize, file.end());
  append_le<std::uint16_t>(tlv, 999);
  append_le<std::uint16_t>(tlv, 0);
  append_le<std::uint32_t>(tlv, 3);
  tlv.insert(tlv.end(), {std::byte{1}, std::byte{2}, std::byte{3}});
  file.resize(kPreambleSize);
  store_le<std::uint32_t>(file.data() + kPreHeaderLen, static_cast<std::uint32_t>(tlv.size()));
  std::uint32_t crc = crc32c(std::span<const std::byte>(file.data(), kPreHeaderCrc));
  store_le<std::uint32_t>(file.data() + kPreHeaderCrc, crc32c(tlv, crc));
  file.insert(file.end(), tlv.begin(), tlv.end());

  auto recs = random_records(6, 40, 90, 10);
  auto first = concat({recs[0], recs[1], recs[2]});
  auto second = concat({recs[3], recs[4], recs[5]});
  auto ts = [&](int i) {
    vmat_hdr x;
    std::memcpy(&x, recs[i].data(), sizeof x);
    return x.ts;
  };
  // A chunk header grown by 16 bytes, an unknown chunk, a normal chunk.
  for (const auto& c :
       {make_chunk(kChunkRecordsRaw, 0, first, static_cast<std::uint32_t>(first.size()), 3, ts(0), ts(2), 16),
        make_chunk(500, 1, Bytes(10), 10, 0, 0, 0),
        make_chunk(kChunkRecordsRaw, 2, second, static_cast<std::uint32_t>(second.size()), 3, ts(3), ts(5)),
        trailer_chunk(3)})
    file.insert(file.end(), c.begin(), c.end());

  auto r = RecordingReader::from_memory(as_span(file));
  EXPECT_EQ(r.header().format_minor, kFormatMinor + 5);
  EXPECT_EQ(r.header().command, h.command);
  EXPECT_TRUE(read_all(r) == recs);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean) << r.status().message;
  EXPECT_EQ(r.notes().size(), 1u);
}

TEST(Record, NewerMajorRefused) {
  Bytes file = encode_recording_header(sample_header(), kFormatMajor + 1, 0);
  try {
    RecordingReader::from_memory(as_span(file), "new.vmat");
    FAIL() << "accepted a newer major version";
  } catch (const RecordingError& e) {
    EXPECT_EQ(std::string(e.what()), "new.vmat was written by format version " + std::to_string(kFormatMajor + 1) +
                                         ".0; this vmatrace reads up to " + std::to_string(kFormatMajor) +
                                         ".x: upgrade vmatrace");
  }
}

// --- damage ------------------------------------------------------------------

std::string error_of(const Bytes& b, const std::string& name = "x.vmat") {
  try {
    RecordingReader::from_memory(as_span(b), name);
  } catch (const RecordingError& e) {
    return e.what();
  }
  return "";
}

TEST(Record, EmptyAndNotARecording) {
  EXPECT_EQ(error_of({}), "x.vmat is empty: not a vmatrace recording");
  std::string text = "hello, this is a text file and not a recording at all\n";
  Bytes b(text.size());
  std::memcpy(b.data(), text.data(), text.size());
  EXPECT_EQ(error_of(b), "x.vmat is not a vmatrace recording");
  EXPECT_EQ(error_of(Bytes{std::byte{'h'}}), "x.vmat is not a vmatrace recording");

  TempDir dir;
  write_file(dir / "empty.vmat", "");
  write_file(dir / "text.vmat", text);
  auto name = (dir / "empty.vmat").string();
  try {
    RecordingReader::open(name);
    FAIL();
  } catch (const RecordingError& e) {
    EXPECT_EQ(std::string(e.what()), name + " is empty: not a vmatrace recording");
  }
  EXPECT_THROW(RecordingReader::open((dir / "text.vmat").string()), RecordingError);
  EXPECT_THROW(RecordingReader::open((dir / "missing.vmat").string()), RecordingError);
  fs::create_directory(dir / "d.vmat");
  EXPECT_THROW(RecordingReader::open((dir / "d.vmat").string()), RecordingError);
}

// A small recording of three record chunks plus the trailer.
struct Small {
  Recording rec;
  std::vector<ChunkInfo> chunks;
  std::uint64_t data_offset;
};

Small small_recording() {
  std::mt19937_64 rng(11);
  std::vector<Bytes> recs;
  for (int i = 0; i < 15; ++i) recs.push_back(make_record(2, 64, 1000 + 10 * i, rng));
  WriterOptions opt;
  opt.chunk_size = 5 * 64;  // 5 records per chunk
  Small s{write_recording(recs, opt), {}, 0};
  auto r = RecordingReader::from_memory(as_span(s.rec.bytes));
  read_all(r);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  s.chunks = r.chunks();
  s.data_offset = r.data_offset();
  EXPECT_EQ(s.chunks.size(), 3u);
  return s;
}

TEST(Record, TruncationAtEveryByteOffset) {
  auto s = small_recording();
  const auto& full = s.rec.bytes;
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    if (cut < s.data_offset) {
      auto err = error_of(part);
      if (cut == 0)
        EXPECT_NE(err.find("is empty"), std::string::npos) << err;
      else
        EXPECT_NE(err.find("truncated header"), std::string::npos) << cut << ": " << err;
      continue;
    }
    auto r = RecordingReader::from_memory(as_span(part), "cut.vmat");
    auto got = read_all(r);
    std::size_t complete = 0, expect_records = 0;
    for (const auto& c : s.chunks)
      if (c.offset + kChunkHeaderSize + c.stored_len <= cut) ++complete, expect_records += c.records;
    ASSERT_EQ(got.size(), expect_records) << "cut at " << cut;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), s.rec.records.begin())) << cut;
    if (cut == full.size()) {
      EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
    } else {
      EXPECT_EQ(r.status().state, ReadStatus::State::Truncated) << cut << ": " << r.status().message;
      EXPECT_NE(r.status().message.find("cut short after chunk"), std::string::npos);
      EXPECT_GE(r.status().chunks, complete);
    }
  }
}

TEST(Record, FlippedByteInEachChunk) {
  auto s = small_recording();
  const auto& full = s.rec.bytes;
  // Every byte of every chunk (the trailer included), two flip patterns.
  for (std::size_t at = s.data_offset; at < full.size(); ++at) {
    std::size_t chunk = 0, before = 0;
    while (chunk < s.chunks.size() && s.chunks[chunk].offset + kChunkHeaderSize + s.chunks[chunk].stored_len <= at)
      before += s.chunks[chunk++].records;
    std::uint64_t chunk_off = chunk < s.chunks.size()
                                  ? s.chunks[chunk].offset
                                  : s.chunks.back().offset + kChunkHeaderSize + s.chunks.back().stored_len;
    for (unsigned mask : {0x01u, 0xffu}) {
      Bytes bad = full;
      bad[at] ^= static_cast<std::byte>(mask);
      auto r = RecordingReader::from_memory(as_span(bad), "flip.vmat");
      auto got = read_all(r);
      ASSERT_EQ(got.size(), before) << "flip at " << at;
      EXPECT_TRUE(std::equal(got.begin(), got.end(), s.rec.records.begin()));
      EXPECT_EQ(r.status().state, ReadStatus::State::Corrupt) << at << ": " << r.status().message;
      EXPECT_EQ(r.status().offset, chunk_off) << at;
    }
  }
  // A flipped header byte is an error at open, never a crash.
  for (std::size_t at = 0; at < s.data_offset; ++at) {
    Bytes bad = full;
    bad[at] ^= std::byte{0x01};
    EXPECT_NE(error_of(bad), "") << at;
  }
}

TEST(Record, HostileChunksWithValidChecksums) {
  auto head = encode_recording_header(sample_header());
  std::mt19937_64 rng(12);
  auto recs = random_records(3, 40, 80, 13);
  auto payload = concat(recs);
  auto n = static_cast<std::uint32_t>(payload.size());
  auto zstd_of = [](const Bytes& raw) {
    Bytes out(ZSTD_compressBound(raw.size()));
    out.resize(ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3));
    return out;
  };
  auto corrupt_with = [&](const Bytes& chunk) {
    Bytes file = head;
    file.insert(file.end(), chunk.begin(), chunk.end());
    auto r = RecordingReader::from_memory(as_span(file));
    auto got = read_all(r);
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(r.status().state, ReadStatus::State::Corrupt) << r.status().message;
    return r.status().message;
  };
  std::uint64_t lo = 0, hi = ~0ull;
  // Lengths over the cap.
  corrupt_with(make_chunk(kChunkRecordsRaw, 0, payload, kMaxChunkLen + 1, 3, lo, hi));
  // zstd frame declaring a different size than the chunk.
  corrupt_with(make_chunk(kChunkRecordsZstd, 0, zstd_of(payload), n + 1, 3, lo, hi));
  corrupt_with(make_chunk(kChunkRecordsZstd, 0, zstd_of(payload), kMaxChunkLen, 3, lo, hi));
  // Garbage that is not a zstd frame.
  corrupt_with(make_chunk(kChunkRecordsZstd, 0, Bytes(64, std::byte{7}), 64, 1, lo, hi));
  // Wrong record count, sequence number, time range.
  corrupt_with(make_chunk(kChunkRecordsRaw, 0, payload, n, 4, lo, hi));
  corrupt_with(make_chunk(kChunkRecordsRaw, 5, payload, n, 3, lo, hi));
  corrupt_with(make_chunk(kChunkRecordsRaw, 0, payload, n, 3, hi, hi));
  // A record claiming more bytes than the chunk has, or fewer than a header.
  for (std::uint32_t bad_size : {0u, 39u, n + 1, 0xffffffffu}) {
    Bytes p = payload;
    std::memcpy(p.data() + offsetof(vmat_hdr, size), &bad_size, 4);
    corrupt_with(make_chunk(kChunkRecordsRaw, 0, p, n, 3, lo, hi));
  }
  // A record shorter than a header at the very end.
  Bytes p = payload;
  p.resize(p.size() + 10);
  corrupt_with(make_chunk(kChunkRecordsRaw, 0, p, static_cast<std::uint32_t>(p.size()), 3, lo, hi));
  // Chunk header sizes out of range.
  {
    Bytes c = make_chunk(kChunkRecordsRaw, 0, payload, n, 3, lo, hi);
    store_le<std::uint16_t>(c.data() + kChHeaderSize, 8);
    store_le<std::uint32_t>(c.data() + kChHeaderCrc, crc32c(std::span<const std::byte>(c.data(), kChHeaderCrc)));
    corrupt_with(c);
  }
  // Random payloads with valid checksums must not crash anything (ASan run).
  for (int i = 0; i < 3000; ++i) {
    Bytes junk(rng() % 300);
    for (auto& b : junk) b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : 0x28);
    auto type = static_cast<std::uint16_t>(1 + rng() % 3);
    Bytes file = head;
    auto c = make_chunk(type, 0, type == kChunkRecordsZstd ? zstd_of(junk) : junk,
                        static_cast<std::uint32_t>(junk.size()), static_cast<std::uint32_t>(rng() % 4), lo, hi);
    file.insert(file.end(), c.begin(), c.end());
    auto r = RecordingReader::from_memory(as_span(file));
    while (auto rec = r.next()) ASSERT_GE(rec->size(), sizeof(vmat_hdr));
    EXPECT_NE(r.status().state, ReadStatus::State::Reading);
  }
}

TEST(Record, WriteErrorReportsPathAndErrno) {
  int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  try {
    RecordingWriter w(UniqueFd(fd), "/dev/full", sample_header());
    FAIL() << "write to /dev/full succeeded";
  } catch (const RecordingError& e) {
    EXPECT_EQ(e.error_code(), ENOSPC);
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOSPC)), std::string::npos) << e.what();
  }
}

// --- file safety -------------------------------------------------------------

TEST(RecordFile, CreatedWithMode0600) {
  TempDir dir;
  auto path = dir / "mode.vmat";
  mode_t old = ::umask(0);
  {
    RecordingWriter w(path.string(), sample_header());
    w.close();
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(RecordFile, RefusesToOverwrite) {
  TempDir dir;
  auto path = dir / "app.vmat";
  write_file(path, "precious");
  try {
    RecordingWriter w(path.string(), sample_header());
    FAIL();
  } catch (const RecordingError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + " exists; use --force to overwrite");
  }
  EXPECT_EQ(read_file(path).size(), 8u);
}

TEST(RecordFile, ForceReplacesRegularFile) {
  TempDir dir;
  auto path = dir / "app.vmat";
  write_file(path, "old contents");
  ::chmod(path.c_str(), 0644);
  WriterOptions opt;
  opt.force = true;
  {
    RecordingWriter w(path.string(), sample_header(), opt);
    w.close();
  }
  auto r = RecordingReader::open(path.string());
  read_all(r);
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);  // a fresh 0600 file, not the old inode
}

TEST(RecordFile, NeverFollowsSymlinks) {
  TempDir dir;
  auto target = dir / "target";
  auto link = dir / "link.vmat";
  write_file(target, "victim");
  fs::create_symlink(target, link);
  auto dangling = dir / "dangling.vmat";
  fs::create_symlink(dir / "nowhere", dangling);
  for (bool force : {false, true}) {
    WriterOptions opt;
    opt.force = force;
    for (const auto& p : {link, dangling}) {
      try {
        RecordingWriter w(p.string(), sample_header(), opt);
        FAIL() << "wrote through a symlink, force=" << force;
      } catch (const RecordingError& e) {
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_EQ(read_file(target).size(), 6u);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_FALSE(fs::exists(dir / "nowhere"));
}

TEST(RecordFile, ForceRefusesNonRegularFiles) {
  TempDir dir;
  fs::create_directory(dir / "d.vmat");
  WriterOptions opt;
  opt.force = true;
  EXPECT_THROW(RecordingWriter((dir / "d.vmat").string(), sample_header(), opt), RecordingError);
  EXPECT_TRUE(fs::is_directory(dir / "d.vmat"));
}

// --- size and speed ----------------------------------------------------------

// 100k page-fault records as a tracer sees them: increasing ts, a few
// threads, addresses walking through a few regions, a handful of fault sites.
std::vector<Bytes> fault_stream(std::size_t n) {
  std::mt19937_64 rng(42);
  std::vector<Bytes> out;
  out.reserve(n);
  std::uint64_t ts = 5'000'000'000ull;
  std::uint64_t regions[4] = {0x55d0c0000000ull, 0x7f1200000000ull, 0x7f1300000000ull, 0x7ffd00000000ull};
  std::uint64_t ips[12];
  for (auto& ip : ips) ip = 0x55d0bf400000ull + (rng() % 0x20000);
  for (std::size_t i = 0; i < n; ++i) {
    vmat_fault_event e{};
    e.hdr.type = VMAT_EV_FAULT;
    e.hdr.size = sizeof e;
    ts += 300 + rng() % 3000;
    e.hdr.ts = ts;
    e.hdr.pid = 31337;
    e.hdr.tid = 31337 + static_cast<std::uint32_t>(rng() % 4);
    std::memcpy(e.hdr.comm, "workload", 9);
    auto& region = regions[rng() % 4];
    region += 4096 * (1 + (rng() % 8 == 0 ? rng() % 64 : 0));
    e.addr = region + (rng() % 4096 & ~7ull);
    e.ip = ips[rng() % 12];
    static const std::uint32_t codes[] = {4, 6, 7, 0x14};
    e.error_code = codes[rng() % 4];
    Bytes b(sizeof e);
    std::memcpy(b.data(), &e, sizeof e);
    out.push_back(std::move(b));
  }
  return out;
}

TEST(RecordSize, CompressionRatioAndThroughput) {
  const std::size_t n = 100'000;
  auto recs = fault_stream(n);
  for (int level : {0, 1, 3, 6}) {
    TempDir dir;
    auto path = dir / "faults.vmat";
    WriterOptions opt;
    opt.zstd_level = level;
    auto t0 = std::chrono::steady_clock::now();
    {
      RecordingWriter w(path.string(), sample_header(), opt);
      for (const auto& x : recs) w.append(x);
      w.close();
    }
    auto t1 = std::chrono::steady_clock::now();
    auto size = fs::file_size(path);
    auto r = RecordingReader::open(path.string());
    std::size_t got = 0, bytes = 0;
    while (auto rec = r.next()) ++got, bytes += rec->size();
    auto t2 = std::chrono::steady_clock::now();
    ASSERT_EQ(got, n);
    ASSERT_EQ(r.status().state, ReadStatus::State::Clean);
    double ws = std::chrono::duration<double>(t1 - t0).count();
    double rs = std::chrono::duration<double>(t2 - t1).count();
    std::printf(
        "[ ratio    ] zstd level %d: %zu records of 64 B -> %ju bytes = %.2f bytes/record (%.1fx); "
        "write %.0f MB/s (%.1f Mrec/s), read %.0f MB/s (%.1f Mrec/s)\n",
        level, n, static_cast<std::uintmax_t>(size), double(size) / n, double(bytes) / double(size), bytes / ws / 1e6,
        n / ws / 1e6, bytes / rs / 1e6, n / rs / 1e6);
    if (level == kDefaultZstdLevel) {
      EXPECT_LT(double(size) / n, 32.0);
    }
  }
}

}  // namespace
}  // namespace vmatrace
