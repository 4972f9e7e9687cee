#include "core/malloc_attribution.h"

#include <array>
#include <utility>

namespace vmatrace {

std::optional<std::string_view> allocator_name(std::string_view symbol) {
  // Versioned names ("malloc@@GLIBC_2.2.5") are the same function.
  if (auto at = symbol.find('@'); at != std::string_view::npos) symbol = symbol.substr(0, at);
  // Itanium C++ ABI: _Znw* is operator new, _Zna* operator new[], whatever
  // the parameter list (size_t, nothrow_t, align_val_t).
  if (symbol.starts_with("_Znw")) return "operator new";
  if (symbol.starts_with("_Zna")) return "operator new[]";
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> names{{
      {"malloc", "malloc"},
      {"__libc_malloc", "malloc"},
      {"__malloc", "malloc"},
      {"calloc", "calloc"},
      {"__libc_calloc", "calloc"},
      {"realloc", "realloc"},
      {"__libc_realloc", "realloc"},
      {"reallocarray", "reallocarray"},
      {"__libc_reallocarray", "reallocarray"},
      {"posix_memalign", "posix_memalign"},
      {"__posix_memalign", "posix_memalign"},
      {"aligned_alloc", "aligned_alloc"},
      {"__libc_aligned_alloc", "aligned_alloc"},
      {"memalign", "memalign"},
      {"__libc_memalign", "memalign"},
      {"__memalign", "memalign"},
      {"valloc", "valloc"},
      {"__libc_valloc", "valloc"},
      {"__valloc", "valloc"},
      {"pvalloc", "pvalloc"},
      {"__libc_pvalloc", "pvalloc"},
      {"__pvalloc", "pvalloc"},
  }};
  for (const auto& [sym, name] : names)
    if (symbol == sym) return name;
  return std::nullopt;
}

Attribution attribute(const std::vector<StackFrame>& frames) {
  Attribution a;
  for (size_t i = frames.size(); i-- > 0;) {
    if (auto name = allocator_name(frames[i].symbol)) {
      a.allocator = std::string(*name);
      a.allocator_frame = i;
      if (i + 1 < frames.size()) a.call_site = i + 1;
      return a;
    }
  }
  if (frames.size() > 1) a.call_site = 1;
  return a;
}

}  // namespace vmatrace
