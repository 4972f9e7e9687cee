// Loss records: their resync flag round-trips (and a record without it, from
// an older file, reads as "resync follows"); LossLog sums them by process and
// says when.
#include "report/loss_log.h"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include <cstring>

#include "core/records.h"

using namespace vmatrace;

namespace {

DecodedRecord loss(uint32_t pid, uint64_t ts, uint64_t lost, uint64_t total, bool resync = true) {
  LossRecord l{lost, total};
  l.resync = resync;
  // A decoded record points into its bytes (its comm): they live as long as the test binary.
  static std::deque<std::vector<std::byte>> kept;
  const auto& bytes = kept.emplace_back(encode_loss(make_header(VMAT_REC_LOSS, ts, pid, pid, "storm"), l));
  std::string err;
  auto d = decode_record(bytes, &err);
  EXPECT_TRUE(d) << err;
  return *d;
}

}  // namespace

TEST(LossRecord, ResyncFlagRoundTrips) {
  EXPECT_TRUE(loss(1, 10, 5, 5, true).loss->resync);
  EXPECT_FALSE(loss(1, 10, 5, 5, false).loss->resync);
}

TEST(LossRecord, UnreadFlagRoundTripsBesideResync) {
  LossRecord l{3, 8};
  l.resync = false;
  l.unread = true;
  auto bytes = encode_loss(make_header(VMAT_REC_LOSS, 1, 2, 2, "storm"), l);
  std::string err;
  auto d = decode_record(bytes, &err);
  ASSERT_TRUE(d) << err;
  EXPECT_TRUE(d->loss->unread);
  EXPECT_FALSE(d->loss->resync);
  EXPECT_EQ(d->loss->lost, 3u);
  EXPECT_EQ(d->loss->lost_total, 8u);
  EXPECT_FALSE(loss(1, 10, 5, 5, false).loss->unread);
  EXPECT_FALSE(loss(1, 10, 5, 5, true).loss->unread);
}

TEST(LossRecord, WithoutTheFlagsWordAResyncFollows) {
  // The layout before the flags word: header, lost, lost_total (today's
  // record ends with the flags word and since_ts).
  LossRecord l{7, 9};
  l.resync = false;
  auto bytes = encode_loss(make_header(VMAT_REC_LOSS, 1, 2, 2, "old"), l);
  bytes.resize(bytes.size() - sizeof(uint32_t) - sizeof(uint64_t));
  vmat_hdr h{};
  std::memcpy(&h, bytes.data(), sizeof(h));
  h.size = static_cast<uint32_t>(bytes.size());
  std::memcpy(bytes.data(), &h, sizeof(h));
  std::string err;
  auto d = decode_record(bytes, &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(d->loss->lost, 7u);
  EXPECT_EQ(d->loss->lost_total, 9u);
  EXPECT_TRUE(d->loss->resync);
  EXPECT_FALSE(d->loss->unread);
}

TEST(LossRecord, SinceRoundTripsAndIsZeroInFilesBeforeIt) {
  LossRecord l{4, 6};
  l.since_ts = 123456789;
  auto bytes = encode_loss(make_header(VMAT_REC_LOSS, 200000000, 2, 2, "storm"), l);
  std::string err;
  auto d = decode_record(bytes, &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(d->loss->since_ts, 123456789u);
  EXPECT_TRUE(d->loss->resync);
  // A file from before since_ts: the record ends with the flags word.
  l.resync = false;
  bytes = encode_loss(make_header(VMAT_REC_LOSS, 200000000, 2, 2, "old"), l);
  bytes.resize(bytes.size() - sizeof(uint64_t));
  vmat_hdr h{};
  std::memcpy(&h, bytes.data(), sizeof(h));
  h.size = static_cast<uint32_t>(bytes.size());
  std::memcpy(bytes.data(), &h, sizeof(h));
  d = decode_record(bytes, &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(d->loss->since_ts, 0u);
  EXPECT_FALSE(d->loss->resync);
  EXPECT_EQ(d->loss->lost, 4u);
}

TEST(LossLog, SumsByProcessAndSaysWhen) {
  LossLog log;
  EXPECT_EQ(log.text(0), "");
  log.add(loss(10, 2'000'000'000, 100, 100));
  log.add(loss(20, 2'500'000'000, 5, 5, false));
  log.add(loss(10, 3'000'000'000, 50, 150));
  EXPECT_EQ(log.total(), 155u);
  auto sites = log.sites();
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].pid, 10u);  // most lost first
  EXPECT_EQ(sites[0].lost, 150u);
  EXPECT_EQ(sites[0].times, 2u);
  EXPECT_EQ(log.text(1'000'000'000),
            "pid 10 (storm): 150 records lost 2 times, +1.000 s to +2.000 s\n"
            "pid 20 (storm): 5 records lost at +1.500 s\n");
  EXPECT_EQ(log.text(1'000'000'000, 1),
            "pid 10 (storm): 150 records lost 2 times, +1.000 s to +2.000 s\n"
            "... and 1 more processes\n");
}
