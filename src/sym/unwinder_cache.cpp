#include "sym/unwinder_cache.h"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/vm_flags.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPage = 4096;

// The file mappings of every object that has code mapped: the modules an
// unwind can pass through.
std::vector<ModuleMapping> code_modules(const Layout& l) {
  std::set<std::string_view> code;
  l.for_each_vma([&](const Vma& v) {
    if (!v.path.empty() && v.path[0] == '/' && (v.flags & VM_EXEC)) code.insert(v.path.view());
  });
  std::vector<ModuleMapping> out;
  l.for_each_vma([&](const Vma& v) {
    if (code.count(v.path.view())) out.push_back({v.path.str(), v.start, v.end, v.pgoff * kPage});
  });
  return out;
}

}  // namespace

UnwinderCache::UnwinderCache(bool live, SymbolSources symbols) : live_(live), symbols_(std::move(symbols)), jit_(live) {
  // libdw looks in a relative directory of its search path next to each
  // binary, and by build id only under absolute ones.
  for (auto& d : symbols_.debug_dirs) d = std::filesystem::absolute(d).lexically_normal().string();
  if (!symbols_.line_cache_dir.empty()) frames_.keep_lines_in(std::make_unique<LineCache>(symbols_.line_cache_dir));
}

Unwinder& UnwinderCache::for_process(const ProcessState& p) {
  auto& c = unwinders_[p.pid];
  // The module list is a function of the file mappings alone: rebuilt (an
  // O(VMAs) walk) only when one of them changed, the Dwfl only when the
  // list did.
  const uint64_t gen = p.layout.file_generation();
  if (c.unwinder && c.layout == &p.layout && c.file_generation == gen) return *c.unwinder;
  auto mods = code_modules(p.layout);
  if (!c.unwinder || c.unwinder->modules() != mods) {
    std::string root = "/proc/" + std::to_string(p.pid) + "/root";
    if (!live_ || ::access(root.c_str(), F_OK) != 0) root.clear();
    c.unwinder = std::make_unique<Unwinder>(p.pid, std::move(mods), root, &frames_, &jit_, &symbols_);
  }
  c.layout = &p.layout;
  c.file_generation = gen;
  return *c.unwinder;
}

void UnwinderCache::note_object(std::string_view note) {
  if (symbols_.debug_dirs.empty()) return;
  // "MAJ:MIN INO BUILD-ID PATH" (trace/watchers.h); "-": no build id.
  const size_t a = note.find(' ');
  const size_t b = a == std::string_view::npos ? a : note.find(' ', a + 1);
  const size_t c = b == std::string_view::npos ? b : note.find(' ', b + 1);
  if (c == std::string_view::npos) return;
  const std::string_view id = note.substr(b + 1, c - b - 1), path = note.substr(c + 1);
  if (id == "-" || path.empty()) return;
  symbols_.build_ids.insert_or_assign(std::string(path), std::string(id));
}

}  // namespace vmatrace
