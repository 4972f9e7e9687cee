// Every file vmatrace writes (record -o, trace -o, top -o, report --html,
// --pprof, --perfetto) is created
// through util/safe_file.h: never through a planted symbolic link (with or
// without --force), an existing file only replaced with --force. Each writer
// is run for real (record/trace load BPF and trace a command).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace {

namespace fs = std::filesystem;
using e2e::RunResult;
using e2e::TempDir;

void expect_one_line_refusal(const RunResult& r, const std::string& needle, const std::string& what) {
  EXPECT_NE(r.status, 0) << what << "\n" << e2e::describe(r);
  EXPECT_EQ(e2e::count_lines(r.err), 1u) << what << ": want one line on stderr\n" << e2e::describe(r);
  EXPECT_NE(r.err.find(needle), std::string::npos) << what << "\n" << e2e::describe(r);
}

// A writer under test: the argv that writes OUT (with --force or not), and
// how to check that OUT holds what it wrote.
struct Writer {
  std::string name;
  std::function<std::vector<std::string>(const std::string& out, bool force)> argv;
  std::function<void(const std::string& out)> check_written;
};

void exercise(const Writer& w) {
  SCOPED_TRACE(w.name);
  TempDir dir;
  // 1. A symlink planted at OUT: refused, with and without --force; its
  //    target untouched, the link still a link.
  const std::string victim = dir.file("victim"), link = dir.file("planted");
  e2e::write_file(victim, "victim's contents");
  fs::create_symlink(victim, link);
  for (bool force : {false, true}) {
    auto r = e2e::run_command(w.argv(link, force));
    expect_one_line_refusal(r, "is a symbolic link; refusing to write through it",
                            w.name + (force ? " --force" : "") + " over a symlink");
  }
  EXPECT_EQ(e2e::read_file(victim).value_or(""), "victim's contents");
  EXPECT_TRUE(fs::is_symlink(link));
  // A dangling link must not create its target either.
  const std::string dangling = dir.file("dangling");
  fs::create_symlink(dir.file("created-through-link"), dangling);
  for (bool force : {false, true}) {
    auto r = e2e::run_command(w.argv(dangling, force));
    expect_one_line_refusal(r, "symbolic link", w.name + " over a dangling symlink");
  }
  EXPECT_FALSE(fs::exists(dir.file("created-through-link")));

  // 2. An existing file: refused without --force, contents kept.
  const std::string out = dir.file("out");
  e2e::write_file(out, "precious");
  auto refused = e2e::run_command(w.argv(out, false));
  expect_one_line_refusal(refused, out + " exists; use --force to overwrite", w.name + " over an existing file");
  EXPECT_EQ(e2e::read_file(out).value_or(""), "precious");

  // 3. ... and replaced with --force, by a fresh 0600 file.
  auto forced = e2e::run_command(w.argv(out, true));
  ASSERT_EQ(forced.status, 0) << e2e::describe(forced);
  EXPECT_NE(e2e::read_file(out).value_or(""), "precious");
  w.check_written(out);
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << "the replaced file is not readable by others";
}

void check_recording(const std::string& path) {
  auto info = e2e::run_command({e2e::vmatrace_bin(), "info", path});
  EXPECT_EQ(info.status, 0) << e2e::describe(info);
  EXPECT_TRUE(std::regex_search(info.out, std::regex("state: +clean"))) << e2e::describe(info);
}

TEST(OutputFilesE2e, RecordOutput) {
  exercise({"record -o",
            [](const std::string& out, bool force) {
              std::vector<std::string> a = {e2e::vmatrace_bin(), "record", "-o", out};
              if (force) a.push_back("--force");
              a.insert(a.end(), {"--", "true"});
              return a;
            },
            check_recording});
}

TEST(OutputFilesE2e, TraceOutput) {
  exercise({"trace -o",
            [](const std::string& out, bool force) {
              std::vector<std::string> a = {e2e::vmatrace_bin(), "trace", "-o", out};
              if (force) a.push_back("--force");
              a.insert(a.end(), {"--", "true"});
              return a;
            },
            check_recording});
}

TEST(OutputFilesE2e, TopOutput) {
  exercise({"top -o",
            [](const std::string& out, bool force) {
              std::vector<std::string> a = {e2e::vmatrace_bin(), "top", "--batch", "-o", out};
              if (force) a.push_back("--force");
              a.insert(a.end(), {"--", "true"});
              return a;
            },
            // A recording (top ends it without a trailer: `info` calls it cut short).
            [](const std::string& out) { EXPECT_EQ(e2e::read_file(out).value_or("").substr(0, 5), "\x89VMAT"); }});
}

TEST(OutputFilesE2e, ReportHtml) {
  TempDir rec_dir;
  const std::string rec = rec_dir.file("rec.vmat");
  auto made = e2e::run_command({e2e::vmatrace_bin(), "record", "-o", rec, "--", "true"});
  ASSERT_EQ(made.status, 0) << e2e::describe(made);
  exercise({"report --html",
            [rec](const std::string& out, bool force) {
              std::vector<std::string> a = {e2e::vmatrace_bin(), "report", rec, "--html", out};
              if (force) a.push_back("--force");
              return a;
            },
            [](const std::string& out) {
              auto page = e2e::read_file(out).value_or("");
              EXPECT_NE(page.find("<html"), std::string::npos) << page.substr(0, 200);
            }});
}

// The exports: gzipped pprof (magic 1f 8b) and a Perfetto trace (a
// protobuf TracePacket stream: field 1, length-delimited, tag byte 0x0a).
void exercise_export(const std::string& flag, const std::function<void(const std::string&)>& check) {
  TempDir rec_dir;
  const std::string rec = rec_dir.file("rec.vmat");
  auto made = e2e::run_command(
      {e2e::vmatrace_bin(), "record", "-o", rec, "--", e2e::workload("mallocgrowth"), rec_dir.file("steps")});
  ASSERT_EQ(made.status, 0) << e2e::describe(made);
  exercise({"report " + flag,
            [rec, flag](const std::string& out, bool force) {
              std::vector<std::string> a = {e2e::vmatrace_bin(), "report", rec, flag, out};
              if (force) a.push_back("--force");
              return a;
            },
            check});
}

TEST(OutputFilesE2e, ReportPprof) {
  exercise_export("--pprof", [](const std::string& out) {
    auto data = e2e::read_file(out).value_or("");
    ASSERT_GE(data.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(data[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(data[1]), 0x8b);
  });
}

TEST(OutputFilesE2e, ReportPerfetto) {
  exercise_export("--perfetto", [](const std::string& out) {
    auto data = e2e::read_file(out).value_or("");
    ASSERT_GE(data.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(data[0]), 0x0a) << "a TracePacket (Trace.packet, field 1)";
  });
}

}  // namespace
