// Rewrites a recording with uncompressed 4 KiB chunks: seeds the fuzzer can
// mutate record by record (a mutation inside a zstd frame mostly yields an
// undecodable frame and never reaches the decoder or the processor).
// Usage: seed_tool IN OUT

#include <cstdio>
#include <exception>

#include "record/reader.h"
#include "record/writer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: seed_tool IN OUT\n");
    return 2;
  }
  try {
    // Without checksums, as the fuzzer reads: a crash input is resealed.
    auto reader = vmatrace::RecordingReader::open(argv[1], vmatrace::ReaderOptions{.verify_checksums = false});
    vmatrace::WriterOptions wo;
    wo.force = true;
    wo.zstd_level = 0;
    wo.chunk_size = 4096;
    vmatrace::RecordingWriter writer(argv[2], reader.header(), wo);
    while (auto rec = reader.next()) writer.append(*rec);
    writer.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
