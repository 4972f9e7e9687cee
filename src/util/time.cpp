#include "util/time.h"

#include <time.h>

#include <cmath>

#include "util/errors.h"

namespace vmatrace {

uint64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t parse_moment(const std::string& s, uint64_t start) {
  auto bad = [&]() -> UserError {
    return UserError("bad moment '" + s + "': use +SECONDS (e.g. +2.5s, +300ms) from the start, or CLOCK_MONOTONIC ns");
  };
  if (s.empty()) throw bad();
  if (s[0] != '+') {
    size_t used = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(s, &used);
    } catch (...) {
      throw bad();
    }
    if (used != s.size()) throw bad();
    return v;
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s.substr(1), &used);
  } catch (...) {
    throw bad();
  }
  std::string unit = s.substr(1 + used);
  double scale = 1e9;
  if (unit == "" || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ns")
    scale = 1;
  else
    throw bad();
  if (!(v >= 0) || !std::isfinite(v)) throw bad();
  return start + static_cast<uint64_t>(std::llround(v * scale));
}

uint64_t parse_interval(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = s.substr(used);
  double scale = unit == "s" || unit.empty() ? 1e9 : unit == "ms" ? 1e6 : unit == "us" ? 1e3 : unit == "ns" ? 1 : -1;
  if (!used || scale < 0 || !(v > 0) || !std::isfinite(v) || v * scale < 1)
    throw UserError("bad interval '" + s + "': use e.g. 100ms, 1s, 250us");
  return static_cast<uint64_t>(std::llround(v * scale));
}

}  // namespace vmatrace
