#include "report/folded_growth.h"

#include "util/text.h"

namespace vmatrace {
namespace {

// A frame as the folded format allows: no ';' (the separator) and no line
// breaks. Spaces stay: readers split the count off at the last one.
void append_frame(std::string& out, std::string_view name) {
  if (!out.empty()) out += ';';
  for (char c : name) out += c == ';' ? ',' : c == '\n' || c == '\r' ? ' ' : c;
}

}  // namespace

void FoldedGrowth::add(const MallocGrowth& g, std::string_view comm) {
  std::string line;
  append_frame(line, comm.empty() ? std::string_view("?") : comm);
  const size_t first = g.attribution.call_site.value_or(0);
  for (size_t i = g.stack.size(); i-- > first;) {
    const StackFrame& f = g.stack[i];
    append_frame(line, f.function.empty() ? hex(f.pc) : f.function);
  }
  append_frame(line, "[" + g.attribution.allocator.value_or("none") + "]");
  stacks_[line] += g.bytes;
  bytes_ += g.bytes;
}

std::string FoldedGrowth::text() const {
  std::string out;
  for (const auto& [stack, bytes] : stacks_) out += stack + " " + std::to_string(bytes) + "\n";
  return out;
}

}  // namespace vmatrace
