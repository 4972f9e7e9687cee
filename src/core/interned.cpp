#include "core/interned.h"

#include <mutex>
#include <unordered_set>

namespace vmatrace {
namespace {

struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Pool {
  std::mutex mu;  // the frontend is one thread; tests and tools may run several
  // Nodes never move, so a pointer to an element stays valid for good.
  std::unordered_set<std::string, Hash, std::equal_to<>> strings;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

const std::string* InternedString::intern(std::string_view s) {
  Pool& p = pool();
  std::lock_guard lock(p.mu);
  auto it = p.strings.find(s);
  if (it == p.strings.end()) it = p.strings.emplace(s).first;
  return &*it;
}

const std::string& InternedString::empty_string() {
  static const std::string empty;
  return empty;
}

size_t InternedString::pool_size() {
  Pool& p = pool();
  std::lock_guard lock(p.mu);
  return p.strings.size();
}

}  // namespace vmatrace
