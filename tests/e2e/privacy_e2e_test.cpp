// What a recording carries away (issue 22, "Privacy and least privilege"):
// by default a user stack is unwound while recording and only its frames
// are kept, never the stack memory; `--keep-stack-bytes` keeps the raw
// bytes; `info` says which. And a recording names the host, kernel and
// command line, never the environment. Each check looks at the recording's
// records themselves (record/reader.h), not at what vmatrace says of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "core/records.h"
#include "e2e_util.h"
#include "pipeline/recording.h"
#include "record/reader.h"

namespace {

using e2e::describe;
using e2e::TempDir;

std::vector<std::string> vm(std::vector<std::string> args) { return e2e::vmatrace_argv(std::move(args)); }

struct Scan {
  uint64_t raw_stacks = 0, frame_stacks = 0, records_with_needle = 0;
  bool header_has_needle = false;
};

bool contains(std::span<const std::byte> hay, const std::string& needle) {
  auto* b = reinterpret_cast<const char*>(hay.data());
  return std::search(b, b + hay.size(), needle.begin(), needle.end()) != b + hay.size();
}

// Every record of the recording, decompressed, searched for `needle`.
Scan scan(const std::string& path, const std::string& needle) {
  Scan s;
  auto reader = vmatrace::RecordingReader::open(path);
  const auto& h = reader.header();
  std::string header = h.hostname + h.kernel_release + h.machine + h.boot_id;
  for (const auto& a : h.command) header += a + '\n';
  for (const auto& [k, v] : h.extra) header += k + v;
  for (const auto& [k, v] : h.attach_modes) header += k + v;
  s.header_has_needle = header.find(needle) != std::string::npos;
  while (auto rec = reader.next()) {
    auto d = vmatrace::decode_record(*rec, nullptr);
    if (!d) continue;
    if (d->type == VMAT_EV_USER_STACK) s.raw_stacks++;
    if (d->type == VMAT_REC_STACK_FRAMES) s.frame_stacks++;
    if (contains(*rec, needle)) s.records_with_needle++;
  }
  EXPECT_EQ(reader.status().state, vmatrace::ReadStatus::State::Clean) << path;
  return s;
}

// The call sites `report --malloc --json` ranks, as "allocator function".
std::vector<std::string> call_sites(const std::string& rec) {
  auto rep = e2e::run_command(vm({"report", rec, "--malloc", "--json"}));
  EXPECT_EQ(rep.status, 0) << describe(rep);
  std::vector<std::string> out;
  static const std::regex site(R"re(\{"allocator":("[^"]*"|null),"function":"([^"]*)")re");
  for (auto it = std::sregex_iterator(rep.out.begin(), rep.out.end(), site); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1].str() + " " + (*it)[2].str());
  return out;
}

TEST(Privacy, StackMemoryIsRecordedOnlyWithKeepStackBytes) {
  TempDir dir;
  const std::string frames_rec = dir.file("frames.vmat"), raw_rec = dir.file("raw.vmat");
  const std::string secret1 = dir.file("secret1"), secret2 = dir.file("secret2");

  // Default: frames only, and the secret that sat on the stack is nowhere.
  auto r = e2e::run_command(vm({"record", "-o", frames_rec, "--", e2e::workload("stacksecret"), secret1}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string s1 = e2e::read_file(secret1).value_or("");
  ASSERT_EQ(s1.size(), 32u);
  Scan f = scan(frames_rec, s1);
  EXPECT_EQ(f.raw_stacks, 0u) << "no raw user stack without --keep-stack-bytes";
  EXPECT_GT(f.frame_stacks, 0u) << "the growth's stack is kept as frames";
  EXPECT_EQ(f.records_with_needle, 0u) << "the stack's secret reached the recording";
  EXPECT_FALSE(f.header_has_needle);

  // --keep-stack-bytes: the raw stack, secret included (the check above can fail).
  r = e2e::run_command(
      vm({"record", "--keep-stack-bytes", "-o", raw_rec, "--", e2e::workload("stacksecret"), secret2}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string s2 = e2e::read_file(secret2).value_or("");
  ASSERT_EQ(s2.size(), 32u);
  Scan k = scan(raw_rec, s2);
  EXPECT_GT(k.raw_stacks, 0u);
  EXPECT_EQ(k.frame_stacks, 0u);
  EXPECT_GT(k.records_with_needle, 0u) << "the raw stack holds the caller's buffer";

  // Both give the same attribution: the malloc called by grow_under_secret.
  auto sites_f = call_sites(frames_rec), sites_k = call_sites(raw_rec);
  EXPECT_NE(std::find(sites_f.begin(), sites_f.end(), "\"malloc\" grow_under_secret"), sites_f.end())
      << testing::PrintToString(sites_f);
  EXPECT_EQ(sites_f, sites_k);

  // info and info --privacy say which the file holds.
  auto info_f = e2e::run_command(vm({"info", frames_rec})), info_k = e2e::run_command(vm({"info", raw_rec}));
  EXPECT_NE(info_f.out.find("user stacks as unwound frames only (no stack memory)"), std::string::npos) << info_f.out;
  EXPECT_EQ(info_f.out.find("raw user stacks"), std::string::npos) << info_f.out;
  EXPECT_NE(info_k.out.find("raw user stacks"), std::string::npos) << info_k.out;
  auto priv_f = e2e::run_command(vm({"info", "--privacy", frames_rec}));
  auto priv_k = e2e::run_command(vm({"info", "--privacy", raw_rec}));
  EXPECT_NE(priv_f.out.find("stack bytes: none"), std::string::npos) << priv_f.out;
  EXPECT_TRUE(std::regex_search(priv_f.out, std::regex("stack frames: [1-9][0-9]* user stacks"))) << priv_f.out;
  EXPECT_TRUE(std::regex_search(priv_k.out, std::regex("stack bytes: [1-9][0-9]* raw user stacks"))) << priv_k.out;
  auto json_f = e2e::run_command(vm({"info", "--json", frames_rec}));
  EXPECT_NE(json_f.out.find("\"stack_bytes\":0,"), std::string::npos) << json_f.out;
}

// Live output (which symbolizes the frames it records) equals the replay of
// the recording made in the same run, with frames as with raw bytes.
TEST(Privacy, FramesReplayAsTracedLive) {
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "--keep-stack-bytes" : "frames");
    TempDir dir;
    const std::string rec = dir.file("rec.vmat");
    std::vector<std::string> a = {"trace", "--json", "--faults=off", "-o", rec};
    if (keep) a.push_back("--keep-stack-bytes");
    a.insert(a.end(), {"--", e2e::workload("stacksecret"), dir.file("secret")});
    auto live = e2e::run_command(vm(a));
    ASSERT_EQ(live.status, 0) << describe(live);
    EXPECT_NE(live.out.find("\"function\":\"grow_under_secret\""), std::string::npos) << live.out.substr(0, 4000);
    auto rep = e2e::run_command(vm({"replay", "--json", rec}));
    ASSERT_EQ(rep.status, 0) << describe(rep);
    EXPECT_EQ(live.out, rep.out) << e2e::diff_lines(live.out, rep.out, "live", "replay");
  }
}

// The recording names host, kernel and command line; the environment of
// vmatrace and of the traced command is never in it.
TEST(Privacy, RecordingHoldsNoEnvironment) {
  TempDir dir;
  const std::string rec = dir.file("rec.vmat");
  const std::string marker = "VMAT_PRIVACY_ENV_7f3a9c";
  const std::string value = "envsecret-5be21d0c";
  // In the environment of both vmatrace and the traced program (which
  // keeps its environment at the top of its stack: with
  // --keep-stack-bytes a copy could reach it only through a growth's stack).
  auto r = e2e::run_command({"env", marker + "=" + value, e2e::vmatrace_bin(), "record", "-o", rec, "--",
                             e2e::workload("mallocgrowth"), dir.file("steps")});
  ASSERT_EQ(r.status, 0) << describe(r);
  for (const std::string& needle : {marker, value}) {
    Scan s = scan(rec, needle);
    EXPECT_FALSE(s.header_has_needle) << needle;
    EXPECT_EQ(s.records_with_needle, 0u) << needle;
  }
  // The command line is there, as given.
  auto reader = vmatrace::RecordingReader::open(rec);
  ASSERT_EQ(reader.header().command.size(), 2u);
  EXPECT_EQ(reader.header().command[0], e2e::workload("mallocgrowth"));
  auto priv = e2e::run_command(vm({"info", "--privacy", rec}));
  EXPECT_NE(priv.out.find("environment: not recorded"), std::string::npos) << priv.out;
}

}  // namespace
