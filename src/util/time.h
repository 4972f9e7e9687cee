#pragma once
// Time: the records' clock, and the moments and intervals users type.

#include <cstdint>
#include <string>

namespace vmatrace {

// CLOCK_MONOTONIC in ns: the clock of the records' ts (bpf_ktime_get_ns).
uint64_t monotonic_ns();

// Parses a moment: "+2.5s", "+300ms", "+1.5" (seconds), "+20us", "+5ns"
// relative to `start`, or an absolute CLOCK_MONOTONIC ns value. Throws
// UserError naming the bad value.
uint64_t parse_moment(const std::string& s, uint64_t start);

// "100ms", "1s", "250us", "0.5s" -> ns; throws UserError.
uint64_t parse_interval(const std::string& s);

}  // namespace vmatrace
