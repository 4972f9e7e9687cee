// The source lines kept across runs (sym/line_cache.h): what one run adds
// the next finds; damaged entries, links and files or directories others
// may write are not trusted.

#include "sym/line_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using vmatrace::LineCache;

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/vmatrace-linecache-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

constexpr uint64_t kId0 = 0x0123456789abcdefull, kId1 = 0xfedcba9876543210ull;

// The file an object's lines are kept in: the build id's bytes in hex.
std::string file_of(const std::string& dir) {
  return dir +
         "/efcdab8967452301"
         "1032547698badcfe.lines";
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(LineCache, WhatOneRunAddsTheNextFinds) {
  TempDir t;
  const std::string dir = t.path + "/a/b";  // created, parents too
  {
    LineCache c(dir);
    EXPECT_EQ(c.find(kId0, kId1, 0x1234), nullptr);
    c.add(kId0, kId1, 0x1234, "/usr/src/x.c", 42);
    c.add(kId0, kId1, 0x99, "", 0);  // no line found: not kept
    ASSERT_NE(c.find(kId0, kId1, 0x1234), nullptr);
  }
  EXPECT_EQ(read(file_of(dir)), "1234 42 12 /usr/src/x.c\n");
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(file_of(dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  LineCache next(dir);
  const auto* l = next.find(kId0, kId1, 0x1234);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->first, "/usr/src/x.c");
  EXPECT_EQ(l->second, 42);
  EXPECT_EQ(next.find(kId0, kId1, 0x99), nullptr);
  EXPECT_EQ(next.find(kId1, kId0, 0x1234), nullptr) << "another object";
}

TEST(LineCache, DamagedEntriesAreSkippedAndACutLineIsEndedBeforeTheNext) {
  TempDir t;
  { std::ofstream(file_of(t.path)) << "10 5 4 /a.c\nzz 5 4 /b.c\n20 -3 4 /c.c\n30 7\n60 1 9 /short.c\n40 8 4 /d."; }
  ::chmod(file_of(t.path).c_str(), 0600);
  {
    LineCache c(t.path);
    ASSERT_NE(c.find(kId0, kId1, 0x10), nullptr);
    EXPECT_EQ(c.find(kId0, kId1, 0x10)->first, "/a.c");
    EXPECT_EQ(c.find(kId0, kId1, 0x20), nullptr);
    EXPECT_EQ(c.find(kId0, kId1, 0x30), nullptr);
    EXPECT_EQ(c.find(kId0, kId1, 0x60), nullptr) << "fewer bytes than its length";
    EXPECT_EQ(c.find(kId0, kId1, 0x40), nullptr) << "cut short: no newline";
    c.add(kId0, kId1, 0x50, "/e.c", 9);
  }
  LineCache next(t.path);
  EXPECT_EQ(next.find(kId0, kId1, 0x40), nullptr);
  ASSERT_NE(next.find(kId0, kId1, 0x50), nullptr);
  EXPECT_EQ(next.find(kId0, kId1, 0x50)->first, "/e.c");
}

TEST(LineCache, NothingThroughALinkNorWhatOthersMayWrite) {
  TempDir t;
  // The directory a symbolic link: off.
  const std::string real = t.path + "/real", link = t.path + "/link";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  {
    LineCache c(link);
    c.add(kId0, kId1, 1, "/x.c", 1);
    EXPECT_FALSE(c.usable());
  }
  EXPECT_FALSE(std::filesystem::exists(file_of(real)));

  // A directory others may write: off.
  const std::string open_dir = t.path + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  LineCache shared(open_dir);
  EXPECT_FALSE(shared.usable());

  // The object's file a link (to a file an attacker wants written): neither
  // read nor written through.
  const std::string victim = t.path + "/victim";
  { std::ofstream(victim) << "1 1 10 /planted.c\n"; }
  ::chmod(victim.c_str(), 0600);
  ASSERT_EQ(::symlink(victim.c_str(), file_of(real).c_str()), 0);
  {
    LineCache c(real);
    EXPECT_TRUE(c.usable());
    EXPECT_EQ(c.find(kId0, kId1, 1), nullptr);
    c.add(kId0, kId1, 2, "/y.c", 2);
    ASSERT_NE(c.find(kId0, kId1, 2), nullptr) << "still kept for this run";
  }
  EXPECT_EQ(read(victim), "1 1 10 /planted.c\n");

  // A file others may write: not trusted.
  const std::string other = t.path + "/other";
  ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
  { std::ofstream(file_of(other)) << "1 1 10 /planted.c\n"; }
  ASSERT_EQ(::chmod(file_of(other).c_str(), 0666), 0);
  LineCache o(other);
  EXPECT_EQ(o.find(kId0, kId1, 1), nullptr);
}

TEST(LineCache, DefaultDirectoryFollowsTheEnvironment) {
  const char* saved_env = std::getenv("VMATRACE_CACHE_DIR");
  const std::string saved = saved_env ? saved_env : "";
  ::setenv("VMATRACE_CACHE_DIR", "off", 1);
  EXPECT_EQ(LineCache::default_dir(), "");
  ::setenv("VMATRACE_CACHE_DIR", "/some/dir", 1);
  EXPECT_EQ(LineCache::default_dir(), "/some/dir");
  ::unsetenv("VMATRACE_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(LineCache::default_dir(), "/xdg/vmatrace");
  ::unsetenv("XDG_CACHE_HOME");
  if (const char* home = std::getenv("HOME"); home && home[0] == '/') {
    EXPECT_EQ(LineCache::default_dir(), std::string(home) + "/.cache/vmatrace");
  }
  if (saved_env) ::setenv("VMATRACE_CACHE_DIR", saved.c_str(), 1);
}

}  // namespace
