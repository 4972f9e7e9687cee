#pragma once
// `vmatrace report FILE --malloc --folded`: malloc growth as folded stacks
// (flamegraph.pl, speedscope, inferno): one line per distinct stack,
//   comm;outermost;...;call site;[allocator] BYTES
// the frames from the process's entry down to the call site (the frames
// pprof's growth samples hold), then the allocator as a leaf in brackets
// ("[none]" for growth not made by an allocator). The bytes add up to
// `report --malloc`'s total.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/malloc_attribution.h"

namespace vmatrace {

class FoldedGrowth {
 public:
  void add(const MallocGrowth& g, std::string_view comm);
  // The lines, sorted by stack.
  std::string text() const;
  uint64_t bytes() const { return bytes_; }

 private:
  std::map<std::string, uint64_t> stacks_;
  uint64_t bytes_ = 0;
};

}  // namespace vmatrace
