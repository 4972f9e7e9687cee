// Checkpoints (core/checkpoint.h, format 2.1): a Processor restored from a
// checkpoint and fed the records after it ends exactly where the one fed
// every record ends; the writer's checkpoint chunks and index, found from the
// trailer or by walking the chunk headers of a file cut short.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/checkpoint.h"
#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "record/reader.h"
#include "record/writer.h"
#include "support/records.h"

using namespace vmatrace;
using namespace vmatrace::test;
using namespace vmatrace::test::records;

namespace {

constexpr uint64_t kBase = 0x7f0000000000;
constexpr uint64_t kSlot = 16 * P;  // each slot holds at most 8 pages: slots never touch

vmat_syscall_event syscall_event(uint32_t pid, uint64_t ts, uint32_t sys, uint64_t a0, uint64_t a1, uint64_t a2 = 0) {
  vmat_syscall_event e{};
  e.hdr = make_header(VMAT_EV_SYSCALL, ts, pid, pid, "work");
  e.enter_ts = ts - 100;
  e.sys = sys;
  e.args[0] = a0;
  e.args[1] = a1;
  e.args[2] = a2;
  e.ret = 0;
  return e;
}

// A stream with every kind of state a checkpoint keeps: two seeded
// processes (one a fork), mmaps, partial munmaps and mprotects that split
// and merge, the gate VMA note, kernel stores left pending, a loss and its
// resync.
std::vector<std::vector<std::byte>> random_stream(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::byte>> out;
  uint64_t ts = 1000;
  out.push_back(encode_note(make_header(VMAT_REC_NOTE, ts++, 0, 0, "vmatrace"), {kNoteSessionStart, ""}));
  out.push_back(encode_note(make_header(VMAT_REC_NOTE, ts++, 0, 0, "vmatrace"),
                            {kNoteGateVma, "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]"}));
  Vma heap = anon(0x555555554000, 0x555555600000);
  Vma file = anon(0x7ff000000000, 0x7ff000010000, kRO);
  file.path = "/usr/lib/libtest.so";
  file.ino = 77;
  file.dev = 8 << 20;
  file.pgoff = 0;
  out.push_back(layout_rec(10, ts++, {heap, file}));
  std::vector<uint64_t> mapped(32, 0);  // pages mapped in each slot (from its start)
  for (int i = 0; i < 600; i++) {
    ts += 1 + rng() % 1000;
    const uint32_t pid = i > 300 && rng() % 2 ? 11 : 10;
    if (i == 300) {
      vmat_fork_event f{};
      f.hdr = make_header(VMAT_EV_FORK, ts, 10, 10, "work");
      f.child_pid = 11;
      f.child_tid = 11;
      f.flags = VMAT_FORK_TRACED;
      out.push_back(bytes_of(f));
      continue;
    }
    if (i == 400) {  // a store outside any syscall: pending for tid 10 until its next syscall
      out.push_back(vma_store_rec(ts, 10, 10, 0xabc, kBase + 40 * kSlot, kBase + 40 * kSlot + P));
      continue;
    }
    if (i == 450) {
      LossRecord l;
      l.lost = 5;
      l.lost_total = 5;
      l.since_ts = ts - 500;
      out.push_back(encode_loss(make_header(VMAT_REC_LOSS, ts, 11, 11, "work"), l));
      continue;
    }
    if (i == 500) {
      out.push_back(layout_rec(11, ts, {heap, file, anon(kBase, kBase + 4 * P)}, LayoutReason::kResync));
      continue;
    }
    const size_t s = rng() % mapped.size();
    const uint64_t at = kBase + s * kSlot;
    if (pid == 10 && mapped[s] == 0) {
      const uint64_t pages = 1 + rng() % 8;
      auto e = mmap_event(pid, ts, at, pages * P, kinfo(at, at + pages * P));
      e.enter_ts = ts - 50;
      out.push_back(bytes_of(e));
      mapped[s] = pages;
    } else if (rng() % 2) {
      const uint64_t first = rng() % 8, n = 1 + rng() % 4;
      out.push_back(bytes_of(syscall_event(pid, ts, VMAT_SYS_MUNMAP, at + first * P, n * P)));
      if (pid == 10 && first == 0 && n >= mapped[s]) mapped[s] = 0;
    } else {
      const uint64_t first = rng() % 8, n = 1 + rng() % 4;
      out.push_back(bytes_of(syscall_event(pid, ts, VMAT_SYS_MPROTECT, at + first * P, n * P, rng() % 2 ? 1 : 3)));
    }
  }
  return out;
}

// The Processor's part of a checkpoint (the observer's left empty): equal
// bytes, equal state.
std::vector<std::byte> processor_bytes(const Processor& p) { return Checkpoint().save(p); }

}  // namespace

TEST(Checkpoint, RestoredProcessorEndsWhereTheWholeReplayEnds) {
  const auto stream = random_stream(1);
  std::vector<DecodedRecord> recs;
  for (const auto& b : stream) recs.push_back(decode(b));
  Processor whole;
  for (const auto& r : recs) whole.apply(r, nullptr);
  ASSERT_EQ(whole.processes().size(), 2u);
  ASSERT_GT(whole.process(10)->layout.size(), 5u);
  const auto end_state = processor_bytes(whole);
  size_t loss = 0, resync = 0;  // the loss of pid 11 and its resync layout
  for (size_t i = 0; i < recs.size(); i++) {
    if (recs[i].type == VMAT_REC_LOSS) loss = i;
    if (recs[i].type == VMAT_REC_LAYOUT && recs[i].hdr.pid == 11) resync = i;
  }
  ASSERT_TRUE(loss && resync > loss);

  for (size_t at : {size_t{0}, size_t{1}, size_t{3}, size_t{150}, size_t{302}, size_t{403}, size_t{452}, size_t{503},
                    recs.size() - 1, recs.size()}) {
    Processor first;
    Checkpoint observer;
    for (size_t i = 0; i < at; i++) {
      first.apply(recs[i], nullptr);
      observer.observe(recs[i]);
    }
    ASSERT_TRUE(Checkpoint::can_save(first));
    const auto saved = observer.save(first);
    Processor resumed;
    Checkpoint::Restored restored;
    std::string why;
    ASSERT_TRUE(Checkpoint::restore(saved, resumed, restored, &why)) << at << ": " << why;
    EXPECT_EQ(restored.records, at);
    // Restored as saved, then the rest of the stream: where the whole replay ends.
    EXPECT_EQ(processor_bytes(resumed), processor_bytes(first)) << at;
    for (size_t i = at; i < recs.size(); i++) resumed.apply(recs[i], nullptr);
    EXPECT_EQ(processor_bytes(resumed), end_state) << "restored after record " << at;
    // The ids too (processor_bytes has them), which --diff matches VMAs by.
    auto a = resumed.process(10)->layout.vmas(), b = whole.process(10)->layout.vmas();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); k++) EXPECT_EQ(a[k], b[k]) << at << " vma " << k;
    // The loss windows the records before it open.
    if (at > loss) {
      auto w = restored.windows.at(11, recs[loss].hdr.ts);
      ASSERT_TRUE(w) << at;
      EXPECT_EQ(w->lost, 5u);
      EXPECT_EQ(w->until, at > resync ? recs[resync].hdr.ts : LossWindows::kOpen) << at;
    } else {
      EXPECT_TRUE(restored.windows.empty()) << at;
    }
  }
}

TEST(Checkpoint, DamagedStateIsRefusedNeverTrusted) {
  const auto stream = random_stream(2);
  Processor p;
  Checkpoint observer;
  for (const auto& b : stream) {
    auto d = decode(b);
    p.apply(d, nullptr);
    observer.observe(d);
  }
  const auto saved = observer.save(p);
  for (size_t cut = 0; cut < saved.size(); cut += 7) {
    Processor q;
    Checkpoint::Restored r;
    std::string why;
    EXPECT_FALSE(Checkpoint::restore(std::span(saved.data(), cut), q, r, &why)) << cut;
    EXPECT_FALSE(why.empty());
  }
  auto newer = saved;
  newer[4] = std::byte{9};  // a version this vmatrace does not know
  Processor q;
  Checkpoint::Restored r;
  std::string why;
  EXPECT_FALSE(Checkpoint::restore(newer, q, r, &why));
  EXPECT_NE(why.find("version 9"), std::string::npos) << why;
  // Flipped bytes: refused or restored, never a crash or a hang.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; i++) {
    auto bad = saved;
    bad[rng() % bad.size()] ^= static_cast<std::byte>(1 + rng() % 255);
    Processor z;
    Checkpoint::Restored rz;
    (void)Checkpoint::restore(bad, z, rz, nullptr);
  }
}

namespace {

std::vector<std::byte> file_bytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  std::vector<std::byte> b;
  if (!f) return b;
  std::byte buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

struct Written {
  std::vector<std::byte> bytes;
  std::vector<CheckpointEntry> checkpoints;
  std::vector<size_t> records_before;  // per checkpoint
  std::vector<std::vector<std::byte>> states;
  std::vector<std::vector<std::byte>> records;
};

// 20k records, a checkpoint whenever the writer says one is due; each
// checkpoint's state names the records before it.
Written write_with_checkpoints(size_t state_size, size_t records = 20000) {
  char tmpl[] = "/tmp/vmat_ckpt_test.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ::close(fd);
  const std::string path = tmpl;
  ::unlink(tmpl);
  Written w;
  WriterOptions o;
  o.chunk_size = 16 << 10;
  o.checkpoint_interval = 64 << 10;
  RecordingHeader h;
  fill_host_info(h);
  {
    RecordingWriter wr(path, h, o);
    std::mt19937_64 rng(4);
    uint64_t ts = 1000;
    for (size_t i = 0; i < records; i++) {
      ts += rng() % 100;
      auto rec = bytes_of(mmap_event(10, ts, kBase + (rng() % 64) * P, P));
      wr.append(rec);
      w.records.push_back(rec);
      if (wr.checkpoint_due()) {
        std::vector<std::byte> state(state_size);
        for (auto& b : state) b = static_cast<std::byte>(rng() % 4);  // compressible, not trivially
        std::memcpy(state.data(), &i, sizeof i);
        wr.append_checkpoint(state);
        w.states.push_back(state);
        w.records_before.push_back(i + 1);
      }
    }
    w.checkpoints = wr.checkpoints();
    wr.close({{"lost", "0"}});
  }
  w.bytes = file_bytes(path);
  ::unlink(path.c_str());
  return w;
}

bool same(const std::vector<CheckpointEntry>& a, const std::vector<CheckpointEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (a[i].offset != b[i].offset || a[i].ts != b[i].ts || a[i].seq != b[i].seq || a[i].length != b[i].length)
      return false;
  return true;
}

}  // namespace

TEST(RecordCheckpoint, IndexAndHeaderWalkFindTheSameCheckpoints) {
  auto w = write_with_checkpoints(512);
  ASSERT_GT(w.checkpoints.size(), 5u);
  auto r = RecordingReader::from_memory(w.bytes, "ckpt.vmat");
  EXPECT_TRUE(same(r.checkpoints(), w.checkpoints));
  EXPECT_TRUE(same(r.checkpoints(/*use_index=*/false), w.checkpoints));
  // A reader from the start skips them without a note, and reads every record.
  size_t n = 0;
  while (auto rec = r.next()) {
    ASSERT_LT(n, w.records.size());
    EXPECT_TRUE(std::equal(rec->begin(), rec->end(), w.records[n].begin(), w.records[n].end())) << n;
    n++;
  }
  EXPECT_EQ(n, w.records.size());
  EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  EXPECT_TRUE(r.notes().empty());
  EXPECT_TRUE(r.trailer().count(recfmt::kTrailerCheckpointIndex));
  // Each checkpoint: its state back, and the records after it from there;
  // its ts is the largest of the records before it.
  for (size_t c = 0; c < w.checkpoints.size(); c++) {
    auto state = r.read_checkpoint(w.checkpoints[c]);
    ASSERT_TRUE(state) << c;
    EXPECT_EQ(*state, w.states[c]);
    vmat_hdr last{};
    std::memcpy(&last, w.records[w.records_before[c] - 1].data(), sizeof last);
    EXPECT_EQ(w.checkpoints[c].ts, last.ts);
    r.seek_after(w.checkpoints[c]);
    size_t k = w.records_before[c];
    while (auto rec = r.next()) {
      ASSERT_LT(k, w.records.size());
      EXPECT_TRUE(std::equal(rec->begin(), rec->end(), w.records[k].begin(), w.records[k].end())) << c << " " << k;
      k++;
    }
    EXPECT_EQ(k, w.records.size()) << c;
    EXPECT_EQ(r.status().state, ReadStatus::State::Clean);
  }
}

TEST(RecordCheckpoint, FileCutShortFallsBackToTheHeaderWalk) {
  auto w = write_with_checkpoints(512);
  ASSERT_GT(w.checkpoints.size(), 5u);
  const auto& mid = w.checkpoints[w.checkpoints.size() / 2];
  for (uint64_t cut : {mid.offset + 10, mid.offset + mid.length, mid.offset + mid.length + 100,
                       static_cast<uint64_t>(w.bytes.size() - 1)}) {
    std::span<const std::byte> part(w.bytes.data(), cut);
    auto r = RecordingReader::from_memory(part, "cut.vmat");
    auto found = r.checkpoints();
    size_t expect = 0;
    while (expect < w.checkpoints.size() && w.checkpoints[expect].offset + w.checkpoints[expect].length <= cut)
      expect++;
    ASSERT_EQ(found.size(), expect) << cut;
    ASSERT_TRUE(same(found, std::vector(w.checkpoints.begin(), w.checkpoints.begin() + expect)));
    // From the last one: the records up to the cut, and the same end as a
    // read from the start.
    auto whole = RecordingReader::from_memory(part, "cut.vmat");
    size_t all = 0;
    while (whole.next()) all++;
    r.seek_after(found.back());
    size_t after = 0;
    while (r.next()) after++;
    const size_t ci = found.size() - 1;
    EXPECT_EQ(w.records_before[ci] + after, all) << cut;
    EXPECT_EQ(r.status().state, whole.status().state);
    EXPECT_EQ(r.status().message, whole.status().message);
  }
}

TEST(RecordCheckpoint, LargeStatesAreSpacedToStayAFewPercentOfTheFile) {
  // A state that compresses to ~8 KiB: after the first (written after the
  // interval, its size not known before), each waits until the file grew by
  // kCheckpointSpacing times the previous one.
  auto w = write_with_checkpoints(32 << 10, 150000);
  ASSERT_GE(w.checkpoints.size(), 3u);
  for (size_t i = 1; i < w.checkpoints.size(); i++) {
    const auto& prev = w.checkpoints[i - 1];
    EXPECT_GE(w.checkpoints[i].offset - (prev.offset + prev.length), recfmt::kCheckpointSpacing * prev.length) << i;
  }
  uint64_t later = 0;  // every checkpoint but the first
  for (size_t i = 1; i < w.checkpoints.size(); i++) later += w.checkpoints[i].length;
  EXPECT_LT(later * 100, w.bytes.size() * 4) << later << " of " << w.bytes.size();
}

// A note's ts is when the frontend wrote it (the mapped objects' notes come
// at the end, after tracing stopped), not a moment of the trace: a
// checkpoint after notes keeps the moment of the last record before them,
// which replay --at can ask for (the 6.1 VM's slow final drain put
// checkpoints "after the end of the recording").
TEST(RecordCheckpoint, NotesDoNotMoveACheckpointsMoment) {
  char tmpl[] = "/tmp/vmatrace-ckpt-note-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string path = tmpl;
  ::unlink(tmpl);
  RecordingHeader h;
  fill_host_info(h);
  std::vector<CheckpointEntry> cps;
  {
    RecordingWriter wr(path, h, WriterOptions{});
    wr.append(bytes_of(mmap_event(10, 5000, kBase, P)));
    wr.append(encode_note(make_header(VMAT_REC_NOTE, 9'000'000, 0, 0, "vmatrace"), NoteRecord{"object", "x"}));
    wr.append_checkpoint(std::vector<std::byte>(64));
    wr.append(bytes_of(mmap_event(10, 6000, kBase + P, P)));
    wr.append_checkpoint(std::vector<std::byte>(64));
    cps = wr.checkpoints();
    wr.close({{"lost", "0"}});
  }
  auto r = RecordingReader::open(path);
  EXPECT_TRUE(same(r.checkpoints(), cps));
  EXPECT_TRUE(same(r.checkpoints(/*use_index=*/false), cps));
  ::unlink(path.c_str());
  ASSERT_EQ(cps.size(), 2u);
  EXPECT_EQ(cps[0].ts, 5000u);
  EXPECT_EQ(cps[1].ts, 6000u);
}
