#include "record/ts_delta.h"

#include <cstdint>
#include <cstring>

#include "vmatrace/abi/events.h"

namespace vmatrace {
namespace {

constexpr std::size_t kTsAt = offsetof(vmat_hdr, ts);
constexpr std::size_t kEnterTsAt = offsetof(vmat_syscall_event, enter_ts);

std::uint64_t load64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store64(std::byte* p, std::uint64_t v) noexcept { std::memcpy(p, &v, sizeof v); }

// Calls f(record) for each record whose framing is sound, in order.
template <typename F>
void for_each_record(std::span<std::byte> records, F&& f) noexcept {
  std::size_t at = 0;
  while (records.size() - at >= sizeof(vmat_hdr)) {
    vmat_hdr hdr;
    std::memcpy(&hdr, records.data() + at, sizeof hdr);
    if (hdr.size < sizeof(vmat_hdr) || hdr.size > records.size() - at) return;
    f(records.subspan(at, hdr.size), hdr.type);
    at += hdr.size;
  }
}

// Syscall records (plain and with their stores) carry enter_ts.
bool has_enter_ts(std::uint32_t type, std::size_t size) noexcept {
  return (type == VMAT_EV_SYSCALL || type == VMAT_EV_SYSCALL_STORES) && size >= kEnterTsAt + sizeof(std::uint64_t);
}

}  // namespace

std::uint64_t encode_ts_delta(std::span<std::byte> r, std::uint32_t type, std::uint64_t prev) noexcept {
  const std::uint64_t ts = load64(r.data() + kTsAt);
  store64(r.data() + kTsAt, ts - prev);
  if (has_enter_ts(type, r.size())) store64(r.data() + kEnterTsAt, ts - load64(r.data() + kEnterTsAt));
  return ts;
}

std::uint64_t decode_ts_delta(std::span<std::byte> r, std::uint32_t type, std::uint64_t prev) noexcept {
  const std::uint64_t ts = prev + load64(r.data() + kTsAt);
  store64(r.data() + kTsAt, ts);
  if (has_enter_ts(type, r.size())) store64(r.data() + kEnterTsAt, ts - load64(r.data() + kEnterTsAt));
  return ts;
}

void encode_ts_deltas(std::span<std::byte> records) noexcept {
  std::uint64_t prev = 0;
  for_each_record(records, [&](std::span<std::byte> r, std::uint32_t type) { prev = encode_ts_delta(r, type, prev); });
}

void decode_ts_deltas(std::span<std::byte> records) noexcept {
  std::uint64_t prev = 0;
  for_each_record(records, [&](std::span<std::byte> r, std::uint32_t type) { prev = decode_ts_delta(r, type, prev); });
}

}  // namespace vmatrace
