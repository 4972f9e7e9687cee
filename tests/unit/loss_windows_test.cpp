// LossWindows: the moments at which a recorded layout may lack records the
// kernel dropped, from a loss record's since_ts to the resync layout after
// it (or to the process's end without one); and LossLedger's accounted
// moment, which the tracer writes as since_ts.
#include "core/loss_windows.h"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include "core/records.h"
#include "trace/losses.h"

using namespace vmatrace;

namespace {

constexpr uint32_t kPid = 42;

// Decoded records point into their bytes: keep them for the test binary's life.
const DecodedRecord& keep(std::vector<std::byte> bytes) {
  static std::deque<std::vector<std::byte>> bytes_kept;
  static std::deque<DecodedRecord> kept;
  std::string err;
  auto d = decode_record(bytes_kept.emplace_back(std::move(bytes)), &err);
  EXPECT_TRUE(d) << err;
  return kept.emplace_back(*d);
}

const DecodedRecord& loss(uint32_t pid, uint64_t ts, uint64_t since, uint64_t lost, bool resync = true) {
  LossRecord l{lost, lost};
  l.since_ts = since;
  l.resync = resync;
  return keep(encode_loss(make_header(VMAT_REC_LOSS, ts, pid, pid, "t"), l));
}

const DecodedRecord& layout(uint32_t pid, uint64_t ts) {
  LayoutRecord l;
  l.reason = LayoutReason::kResync;
  return keep(encode_layout(make_header(VMAT_REC_LAYOUT, ts, pid, pid, "t"), l));
}

}  // namespace

TEST(LossWindows, FromSinceToTheResyncLayout) {
  LossWindows w;
  w.add(layout(kPid, 100));
  w.add(loss(kPid, 500, 300, 7));
  w.add(layout(kPid, 510));
  EXPECT_FALSE(w.at(kPid, 299));
  EXPECT_FALSE(w.at(kPid, 300)) << "every record up to since_ts is there";
  ASSERT_TRUE(w.at(kPid, 301));
  EXPECT_EQ(w.at(kPid, 301)->lost, 7u);
  EXPECT_EQ(w.at(kPid, 301)->from, 300u);
  EXPECT_EQ(w.at(kPid, 301)->until, 510u);
  EXPECT_TRUE(w.at(kPid, 505)) << "between the loss record and its resync";
  EXPECT_FALSE(w.at(kPid, 510)) << "the resync layout is applied at its ts";
  EXPECT_FALSE(w.at(kPid + 1, 400)) << "another process";
}

TEST(LossWindows, WithoutAResyncItLastsToTheEnd) {
  LossWindows w;
  w.add(loss(kPid, 500, 300, 2, /*resync=*/false));
  EXPECT_TRUE(w.at(kPid, 1'000'000));
  EXPECT_EQ(w.at(kPid, 1'000'000)->until, LossWindows::kOpen);
  w.add(layout(kPid, 600));  // a later layout (an exec of a reused pid...) does not close it
  EXPECT_TRUE(w.at(kPid, 700));
}

TEST(LossWindows, SinceNotKnownStartsAtThePreviousLayout) {
  LossWindows w;
  w.add(layout(kPid, 100));
  w.add(loss(kPid, 500, 0, 1));
  w.add(layout(kPid, 520));
  EXPECT_FALSE(w.at(kPid, 100));
  EXPECT_TRUE(w.at(kPid, 101));
  EXPECT_FALSE(w.at(kPid, 520));
}

TEST(LossWindows, ASecondLossBeforeTheResyncWidensTheWindow) {
  LossWindows w;
  w.add(loss(kPid, 500, 300, 2));
  w.add(loss(kPid, 600, 550, 3));
  w.add(layout(kPid, 610));
  ASSERT_TRUE(w.at(kPid, 580));
  EXPECT_EQ(w.at(kPid, 580)->from, 300u);
  EXPECT_EQ(w.at(kPid, 580)->lost, 5u);
  EXPECT_FALSE(w.at(kPid, 610));
}

TEST(LossLedger, AccountedMomentOnlyMovesForward) {
  LossLedger l;
  l.accounted_at(10);
  l.accounted_at(5);
  EXPECT_EQ(l.accounted_until(), 10u);
  l.accounted_at(20);
  EXPECT_EQ(l.accounted_until(), 20u);
}

// total() is kept as a running sum (read at every poll): it must equal the
// sum of what live processes reported, what ended ones lost (the larger of
// reported and their exit's count) and what was left unread.
TEST(LossLedger, TotalsFollowReportsExitsAndUnread) {
  LossLedger l;
  EXPECT_EQ(l.take_new(7, 5), 5u);
  EXPECT_EQ(l.take_new(7, 5), std::nullopt);
  EXPECT_EQ(l.take_new(7, 8), 3u);
  EXPECT_EQ(l.take_new(9, 2), 2u);
  EXPECT_EQ(l.total(), 10u);
  vmatrace::DecodedRecord exit;
  exit.type = VMAT_EV_EXIT;
  exit.hdr.pid = 7;
  exit.exit = vmat_exit_event{};
  exit.exit.flags = VMAT_EXIT_GROUP;
  exit.exit.lost = 11;  // 3 more since the last report
  l.forget_ended(exit);
  EXPECT_EQ(l.total(), 13u);
  EXPECT_EQ(l.take_new(7, 1), 1u);  // the pid reused: its count starts again
  l.forget(9);
  EXPECT_EQ(l.total(), 14u);
  EXPECT_EQ(l.add_unread(7, 4), 5u);
  EXPECT_EQ(l.total(), 18u);
  EXPECT_EQ(l.dropped(), 14u);
  l.forget(7);
  EXPECT_EQ(l.total(), 18u);
}
