// libFuzzer target: arbitrary bytes through the whole replay path
// (RecordingReader::from_memory -> decode_record -> Processor::apply ->
// Printer). Built with -DVMATRACE_FUZZ=ON (clang); run as ctest fuzz.recording.
// Any input that crashes goes to tests/fuzz/regressions/, which the unit
// test fuzz_regressions replays on every build, fuzzer or not.

#include <cstdio>

#include "replay_one.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Opened once: the printers' output is irrelevant, only that producing it
  // does not crash or leak.
  static std::FILE* devnull = std::fopen("/dev/null", "w");
  // No checksums: otherwise almost every mutation fails a CRC and never reaches the decoder.
  vmatrace::fuzz::replay_one(std::span(reinterpret_cast<const std::byte*>(data), size), devnull,
                             vmatrace::ReaderOptions{.verify_checksums = false});
  return 0;
}
