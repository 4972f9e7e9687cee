#pragma once
// The consumer side of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF), as
// libbpf's ring_buffer reads it (the same positions, record headers and
// memory ordering: kernel/bpf/ringbuf.c), with one difference: the data
// pages are mapped once, not twice. The kernel maps a ring's data twice in
// a row so that a record crossing the end reads as one piece, and libbpf
// maps both copies; the kernel populates the whole mapping at mmap
// (remap_vmalloc_range), so a 64 MiB ring cost the tracer 128 MiB of RSS.
// Here a record that wraps (rare: at most one per pass over the ring) is
// copied into a buffer kept for that.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/unique_fd.h"

namespace vmatrace {

class RingReader {
 public:
  // Maps the ring of `map_fd` (which stays owned by the caller and must
  // outlive the reader). Throws std::system_error on failure.
  explicit RingReader(int map_fd);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Waits up to timeout_ms for the kernel's wake-up (poll() on the map).
  // Returns false on a timeout or EINTR; throws std::system_error otherwise.
  bool wait(int timeout_ms) const;

  // The producer's position: every record reserved so far lies before it.
  uint64_t produced() const;
  // Ours: every record before it has been handed over (or was discarded).
  uint64_t consumed() const;

  // Hands each committed record to `on_record` in order, until the ring is
  // empty, the next record starts at or past `until` (a produced() taken
  // earlier: what had been reserved then, and nothing after), or on_record
  // returns false (that record counts as consumed). Returns how many
  // records it handed over.
  template <typename OnRecord>
  int consume(OnRecord&& on_record, uint64_t until = UINT64_MAX);

  // Hands each committed record queued now to `on_record` without
  // consuming it (what a reader that stops here leaves unread). Returns
  // how many.
  template <typename OnRecord>
  int peek(OnRecord&& on_record);

 private:
  // The committed record at `pos` or after it (discarded ones skipped: pos
  // moves past them), if one starts before `until`: its bytes, and where a
  // reader goes after it. False when none is ready.
  bool read_at(uint64_t& pos, uint64_t until, std::span<const std::byte>& rec, uint64_t& after);
  void release(uint64_t pos);

  int map_fd_;
  size_t page_ = 0;
  size_t size_ = 0;                // data bytes (a power of two)
  void* consumer_page_ = nullptr;  // read-write: our position
  void* producer_ = nullptr;       // read-only: producer page, then the data once
  const std::byte* data_ = nullptr;
  std::vector<std::byte> wrapped_;  // a record crossing the end, in one piece
};

template <typename OnRecord>
int RingReader::consume(OnRecord&& on_record, uint64_t until) {
  int n = 0;
  uint64_t pos = consumed(), after = 0;
  std::span<const std::byte> rec;
  while (read_at(pos, until, rec, after)) {
    ++n;
    const bool more = on_record(rec);
    release(pos = after);
    if (!more) return n;
  }
  if (pos != consumed()) release(pos);  // discarded records at the end
  return n;
}

template <typename OnRecord>
int RingReader::peek(OnRecord&& on_record) {
  int n = 0;
  uint64_t pos = consumed(), after = 0;
  std::span<const std::byte> rec;
  for (const uint64_t until = produced(); read_at(pos, until, rec, after); pos = after) {
    ++n;
    on_record(rec);
  }
  return n;
}

}  // namespace vmatrace
