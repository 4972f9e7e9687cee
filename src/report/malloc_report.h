#pragma once
// malloc growth attribution: the malloc_growth event (one growth of the heap
// or of an mmap region, with the allocator and call site that caused it)
// and the summary of a whole trace (call sites ranked by bytes grown).
// Pure: fed by MallocTracker (src/sym/malloc_tracker.h) or by tests.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/malloc_attribution.h"
#include "output/fields.h"

namespace vmatrace {

// "parse_blob+0x1c (blob.c:88)", "0x7f3c2a001234 (libfoo.so)", "?"
std::string frame_text(const StackFrame& f);
// The malloc_growth event's fields (after the header and the event name),
// for Printer::derived(rec, "malloc_growth", fields). Views into g.
void growth_fields(const MallocGrowth& g, FieldList& out);
// The text after the event name: "malloc via brk +132.0 KiB => 0x..-0x.. rw-p [heap] from f+0x1c (a.c:9)".
std::string growth_text(const MallocGrowth& g);
// The call site as the ranking groups it: "grow_heap (mallocgrowth.c:42)",
// "?" when unknown (no offset: every growth from one function is one site).
std::string call_site_label(const MallocGrowth& g);
// The JSON members (",\"allocator\":...") of a malloc_growth event (growth_fields() encoded).
std::string growth_json_fields(const MallocGrowth& g);

class MallocReport {
 public:
  void add(const MallocGrowth& g);
  std::string text(size_t top = 20) const;
  std::string json(size_t top = 0) const;  // one object, no newline
  uint64_t growths() const { return growths_; }

  struct Site {
    std::string allocator;  // "" when not from an allocator
    std::string function;   // call site function ("?" unknown)
    std::string location;   // "file:line" or module
    uint64_t count = 0, bytes = 0;
    uint64_t brk_count = 0, brk_bytes = 0;
    uint64_t mmap_count = 0, mmap_bytes = 0;  // mmap and mremap
    uint64_t mprotect_count = 0, mprotect_bytes = 0;
    uint64_t largest = 0;
    std::string largest_via;
  };
  // Ranked: most bytes first (ties: allocator, function).
  std::vector<Site> sites() const;

 private:
  std::map<std::tuple<std::string, std::string, std::string>, Site> sites_;
  uint64_t growths_ = 0, bytes_ = 0, unattributed_bytes_ = 0;
  std::optional<MallocGrowth> largest_;
};

}  // namespace vmatrace
