// Replays every input in tests/fuzz/regressions/ (inputs that once crashed
// the reader, decoder, processor or printer) through the fuzzer's path, so
// a fixed crash stays fixed in every build, including ones without libFuzzer.

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "../fuzz/replay_one.h"

namespace {

TEST(FuzzRegressions, EveryInputReplaysWithoutCrashing) {
  namespace fs = std::filesystem;
  const fs::path dir = VMATRACE_FUZZ_REGRESSIONS;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::FILE* devnull = std::fopen("/dev/null", "w");
  ASSERT_NE(devnull, nullptr);
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().string());
    vmatrace::fuzz::replay_one(std::as_bytes(std::span(bytes)), devnull);
    n++;
  }
  std::fclose(devnull);
  RecordProperty("inputs", static_cast<int>(n));
}

}  // namespace
