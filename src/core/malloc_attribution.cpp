#include "core/malloc_attribution.h"

#include <array>
#include <utility>

namespace vmatrace {

namespace {

// The public entry points, by the name a C library or a replacement
// allocator exports them under (jemalloc, tcmalloc, mimalloc export the
// same names when they replace malloc; prefixed builds add "je_", "tc_",
// "mi_"; glibc has internal aliases "__libc_", "__").
constexpr std::array<std::string_view, 9> kEntryPoints{
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};
constexpr std::array<std::string_view, 5> kEntryPrefixes{"__libc_", "__", "je_", "tc_", "mi_"};

// Entry points under names of their own, and what each is.
constexpr std::array<std::pair<std::string_view, std::string_view>, 23> kOtherEntryPoints{{
    // tcmalloc (gperftools/tcmalloc.h): its operator new and new[].
    {"tc_new", "operator new"},
    {"tc_new_nothrow", "operator new"},
    {"tc_new_aligned", "operator new"},
    {"tc_new_aligned_nothrow", "operator new"},
    {"tc_newarray", "operator new[]"},
    {"tc_newarray_nothrow", "operator new[]"},
    {"tc_newarray_aligned", "operator new[]"},
    {"tc_newarray_aligned_nothrow", "operator new[]"},
    {"tc_malloc_skip_new_handler", "malloc"},
    // mimalloc (mimalloc.h): its operator new, and the C calls that are
    // malloc, calloc, realloc or aligned_alloc under another name.
    {"mi_new", "operator new"},
    {"mi_new_nothrow", "operator new"},
    {"mi_new_aligned", "operator new"},
    {"mi_new_aligned_nothrow", "operator new"},
    {"mi_new_n", "operator new[]"},
    {"mi_new_realloc", "realloc"},
    {"mi_new_reallocn", "realloc"},
    {"mi_zalloc", "calloc"},
    {"mi_mallocn", "malloc"},
    {"mi_reallocn", "realloc"},
    {"mi_reallocf", "realloc"},
    {"mi_malloc_aligned", "aligned_alloc"},
    {"mi_zalloc_aligned", "aligned_alloc"},
    {"mi_calloc_aligned", "aligned_alloc"},
}};

// Allocators that replace malloc, by the file name their library starts
// with, and the symbol prefixes of their internals (seen where the library
// is linked statically or keeps its symbol table): a growth that leaves
// through one of them without passing a named entry point (a tail call
// from malloc, mallocx, an internal growth path) is still theirs.
struct AllocatorLibrary {
  std::string_view name, file_prefix;
  std::array<std::string_view, 3> symbol_prefixes;
};
constexpr std::array<AllocatorLibrary, 3> kLibraries{{
    {"jemalloc", "libjemalloc.so", {"je_", "", ""}},
    {"tcmalloc", "libtcmalloc", {"tc_", "TCMalloc_", "_ZN8tcmalloc"}},
    {"mimalloc", "libmimalloc", {"mi_", "_mi_", ""}},
}};

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::optional<std::string_view> allocator_name(std::string_view symbol) {
  // Versioned names ("malloc@@GLIBC_2.2.5") are the same function.
  if (auto at = symbol.find('@'); at != std::string_view::npos) symbol = symbol.substr(0, at);
  // Itanium C++ ABI: _Znw* is operator new, _Zna* operator new[], whatever
  // the parameter list (size_t, nothrow_t, align_val_t).
  if (symbol.starts_with("_Znw")) return "operator new";
  if (symbol.starts_with("_Zna")) return "operator new[]";
  for (auto entry : kEntryPoints)
    if (symbol == entry) return entry;
  for (auto prefix : kEntryPrefixes) {
    if (!symbol.starts_with(prefix)) continue;
    for (auto entry : kEntryPoints)
      if (symbol.substr(prefix.size()) == entry) return entry;
  }
  for (const auto& [sym, name] : kOtherEntryPoints)
    if (symbol == sym) return name;
  return std::nullopt;
}

std::optional<std::string_view> allocator_library(const StackFrame& f) {
  std::string_view file = base_name(f.module);
  std::string_view symbol = f.symbol;
  for (const auto& lib : kLibraries) {
    if (!file.empty() && file.starts_with(lib.file_prefix)) return lib.name;
    for (auto prefix : lib.symbol_prefixes)
      if (!prefix.empty() && symbol.starts_with(prefix)) return lib.name;
  }
  return std::nullopt;
}

Attribution attribute(const std::vector<StackFrame>& frames) {
  Attribution a;
  // The outermost frame that is the allocator's: a named entry point, or
  // code of an allocator library.
  for (size_t i = frames.size(); i-- > 0;) {
    auto entry = allocator_name(frames[i].symbol);
    auto library = entry ? std::nullopt : allocator_library(frames[i]);
    if (!entry && !library) continue;
    a.allocator_frame = i;
    if (i + 1 < frames.size()) a.call_site = i + 1;
    // Library code outside any named entry (malloc tail-calling its body,
    // mallocx): named by the outermost entry point inside it, else by the
    // library.
    for (size_t j = i; !entry && j-- > 0;) entry = allocator_name(frames[j].symbol);
    a.allocator = std::string(entry ? *entry : *library);
    return a;
  }
  if (frames.size() > 1) a.call_site = 1;
  return a;
}

}  // namespace vmatrace
