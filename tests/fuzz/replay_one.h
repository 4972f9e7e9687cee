#pragma once
// The whole replay path over one untrusted input, shared by the libFuzzer
// target (tests/fuzz/recording_fuzzer.cpp) and the regression unit test
// (tests/unit/fuzz_regressions_test.cpp), so that a crash input kept in
// tests/fuzz/regressions/ is replayed exactly the way the fuzzer found it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "core/processor.h"
#include "core/records.h"
#include "core/syscall_names.h"
#include "output/printer.h"
#include "record/reader.h"

namespace vmatrace::fuzz {

// Everything `vmatrace replay` (text and --json --maps) and `info` do with a
// recording, writing to `sink` (/dev/null). Hostile input must end in a
// RecordingError from the header parse or a non-Clean status, never a crash.
inline void replay_one(std::span<const std::byte> data, std::FILE* sink, ReaderOptions reader_opts = {}) {
  std::optional<RecordingReader> reader;
  try {
    reader.emplace(RecordingReader::from_memory(data, "<fuzz>", reader_opts));
  } catch (const std::exception&) {
    return;  // rejected header: the expected outcome for most inputs
  }
  PrinterOptions text_opts;
  PrinterOptions json_opts;
  json_opts.format = OutputFormat::kJson;
  json_opts.maps_at_end = true;
  Printer text(sink, text_opts), json(sink, json_opts);
  Processor text_proc, json_proc;
  while (auto rec = reader->next()) {
    std::string err;
    auto d = decode_record(*rec, &err);
    if (!d) continue;
    text_proc.apply(*d, &text);
    json_proc.apply(*d, &json);
  }
  text_proc.finish(&text);
  json_proc.finish(&json);
  text.flush();
  json.flush();
  // Random access (replay --at): every chunk the index lists must be
  // re-readable by seek() without trusting anything but the index.
  auto chunks = reader->chunks();
  for (const auto& c : chunks) {
    reader->seek(c);
    for (int i = 0; i < 4; i++) {
      auto rec = reader->next();
      if (!rec) break;
      std::string err;
      (void)decode_record(*rec, &err);
    }
  }
}

}  // namespace vmatrace::fuzz
