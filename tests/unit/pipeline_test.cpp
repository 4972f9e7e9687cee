// The Pipeline's order (stages around the Processor, sinks in turn), its
// fan-out, the recording input's errors, the loss ledger and time parsing.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "core/records.h"
#include "pipeline/pipeline.h"
#include "pipeline/recording.h"
#include "trace/losses.h"
#include "util/errors.h"
#include "util/time.h"

using namespace vmatrace;

namespace {

struct Log {
  std::vector<std::string> events;
};

class LogSink : public RecordSink {
 public:
  LogSink(Log& log, std::string name, bool derived = true) : log_(log), name_(std::move(name)), derived_(derived) {}
  void on_record(const DecodedRecord& rec, const Applied&, const ProcessState*) override {
    log_.events.push_back(name_ + ":" + (rec.note ? rec.note->key : "?"));
  }
  void on_process_end(const ProcessState& p) override {
    log_.events.push_back(name_ + ":end " + std::to_string(p.pid));
  }
  bool wants_derived() const override { return derived_; }

 private:
  Log& log_;
  std::string name_;
  bool derived_;
};

class LogStage : public Stage {
 public:
  explicit LogStage(Log& log) : log_(log) {}
  void before_apply(const DecodedRecord&, const Processor& p) override {
    log_.events.push_back("before:" + std::to_string(p.stats().records));
  }
  void after_apply(const DecodedRecord&, const Processor& p) override {
    log_.events.push_back("after:" + std::to_string(p.stats().records));
  }

 private:
  Log& log_;
};

std::vector<std::byte> note(const std::string& key) {
  return encode_note(make_header(VMAT_REC_NOTE, 100, 0, 0, "vmatrace"), NoteRecord{key, ""});
}

}  // namespace

TEST(Pipeline, StagesWrapTheProcessorAndSinksRunInOrder) {
  Log log;
  LogSink a(log, "a"), b(log, "b");
  LogStage stage(log);
  Pipeline p;
  p.add_stage(&stage);
  p.add_sink(&a);
  p.add_sink(&b);
  EXPECT_TRUE(p.feed(note("k")));
  EXPECT_EQ(log.events, (std::vector<std::string>{"before:0", "a:k", "b:k", "after:1"}));
}

TEST(Pipeline, MalformedRecordsAreCountedAndNotApplied) {
  Log log;
  LogSink a(log, "a");
  Pipeline p;
  p.add_sink(&a);
  std::vector<std::byte> junk(3);
  EXPECT_FALSE(p.feed(junk));
  EXPECT_EQ(p.malformed(), 1u);
  EXPECT_TRUE(log.events.empty());
  EXPECT_EQ(p.processor().stats().records, 0u);
}

TEST(Pipeline, FanoutHandsTheProcessorNothingOneSinkOrItself) {
  Log log;
  LogSink quiet(log, "q", /*derived=*/false), loud(log, "l");
  SinkFanout f;
  EXPECT_EQ(f.target(), nullptr);
  f.add(&quiet);
  EXPECT_EQ(f.target(), &quiet);
  EXPECT_FALSE(f.wants_derived());
  f.add(&loud);
  EXPECT_EQ(f.target(), &f);
  EXPECT_TRUE(f.wants_derived());
}

TEST(Recording, OpeningAMissingFileIsAUserError) {
  try {
    open_recording("/nonexistent/x.vmat");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.vmat"), std::string::npos) << e.what();
  }
  EXPECT_EQ(kExitDamaged, 3);
}

TEST(LossLedger, ReportsGrowthOnceAndKeepsWhatEndedProcessesLost) {
  LossLedger l;
  EXPECT_FALSE(l.any_new({{7, 0}}));
  EXPECT_TRUE(l.any_new({{7, 5}}));
  EXPECT_EQ(l.take_new(7, 5), 5u);
  EXPECT_FALSE(l.take_new(7, 5));
  EXPECT_FALSE(l.any_new({{7, 5}}));
  EXPECT_EQ(l.take_new(7, 8), 3u);
  EXPECT_EQ(l.total(), 8u);
  // Its exit says 10 in all: the pid's count moves to the ended total.
  DecodedRecord exit;
  exit.type = VMAT_EV_EXIT;
  exit.hdr.pid = 7;
  exit.exit.flags = VMAT_EXIT_GROUP;
  exit.exit.lost = 10;
  l.forget_ended(exit);
  EXPECT_EQ(l.total(), 10u);
  // A new process with the pid starts from zero.
  EXPECT_EQ(l.take_new(7, 2), 2u);
  EXPECT_EQ(l.total(), 12u);
}

// Records left unread in the ring at the stop: lost, on top of what the
// kernel dropped (dropped() stays the kernel's part), per process.
TEST(LossLedger, UnreadAtTheStopCountsAsLostButNotAsDropped) {
  LossLedger l;
  EXPECT_EQ(l.take_new(7, 5), 5u);
  EXPECT_EQ(l.add_unread(7, 3), 8u) << "pid 7's total: 5 dropped, 3 unread";
  EXPECT_EQ(l.add_unread(9, 4), 4u);
  EXPECT_EQ(l.add_unread(9, 1), 5u);
  EXPECT_EQ(l.total(), 13u);
  EXPECT_EQ(l.dropped(), 5u);
  EXPECT_EQ(l.unread(), 8u);
  EXPECT_FALSE(l.any_new({{7, 5}})) << "unread records are not the kernel's count";
}

TEST(LossLedger, LossesFoundAtExitOrOrphanedAreCountedOnce) {
  LossLedger l;
  EXPECT_EQ(l.take_new(7, 5), 5u);
  // The session reports what the exit record's count adds, then the exit ends the pid.
  EXPECT_EQ(l.take_new(7, 10), 5u);
  DecodedRecord exit;
  exit.type = VMAT_EV_EXIT;
  exit.hdr.pid = 7;
  exit.exit.flags = VMAT_EXIT_GROUP;
  exit.exit.lost = 10;
  l.forget_ended(exit);
  EXPECT_EQ(l.total(), 10u);
  // A process whose exit record was lost: its reported count moves to the ended total.
  EXPECT_EQ(l.take_new(9, 4), 4u);
  l.forget(9);
  l.forget(9);
  EXPECT_EQ(l.total(), 14u);
  EXPECT_EQ(l.take_new(9, 1), 1u);  // a new process with that pid
  EXPECT_EQ(l.total(), 15u);
}

TEST(Time, MomentsAndIntervals) {
  EXPECT_EQ(parse_moment("+2.5s", 1000), 1000u + 2'500'000'000u);
  EXPECT_EQ(parse_moment("+300ms", 0), 300'000'000u);
  EXPECT_EQ(parse_moment("+1.5", 0), 1'500'000'000u);
  EXPECT_EQ(parse_moment("+20us", 0), 20'000u);
  EXPECT_EQ(parse_moment("12345", 99), 12345u);
  EXPECT_THROW(parse_moment("+1h", 0), UserError);
  EXPECT_THROW(parse_moment("", 0), UserError);
  EXPECT_THROW(parse_moment("12x", 0), UserError);
  EXPECT_EQ(parse_interval("100ms"), 100'000'000u);
  EXPECT_EQ(parse_interval("1s"), 1'000'000'000u);
  EXPECT_EQ(parse_interval("0.5"), 500'000'000u);
  EXPECT_THROW(parse_interval("0s"), UserError);
  EXPECT_THROW(parse_interval("fast"), UserError);
  EXPECT_GT(monotonic_ns(), 0u);
}
