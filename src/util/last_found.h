#pragma once
// A std::map keyed by pid whose last hit is found again without a look-up:
// records come in runs of one process, so per-process state is mostly
// asked for the same pid as the time before. The map's nodes stay put
// until erased: forget(pid) before erasing its entry.

#include <cstdint>
#include <map>

namespace vmatrace {

template <typename T>
class LastFound {
 public:
  T* find(std::map<uint32_t, T>& map, uint32_t pid) {
    if (last_ && pid_ == pid) return last_;
    auto it = map.find(pid);
    if (it == map.end()) return nullptr;
    pid_ = pid;
    last_ = &it->second;
    return last_;
  }
  void forget(uint32_t pid) {
    if (pid_ == pid) last_ = nullptr;
  }

 private:
  uint32_t pid_ = 0;
  T* last_ = nullptr;
};

}  // namespace vmatrace
