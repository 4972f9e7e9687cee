#include "trace/ring_reader.h"

#include <linux/bpf.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace vmatrace {
namespace {

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

uint64_t load_acquire(const void* p) { return __atomic_load_n(static_cast<const uint64_t*>(p), __ATOMIC_ACQUIRE); }

constexpr uint32_t kHeaderBytes = BPF_RINGBUF_HDR_SZ;

}  // namespace

RingReader::RingReader(int map_fd) : map_fd_(map_fd), page_(static_cast<size_t>(::sysconf(_SC_PAGESIZE))) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len)) fail("reading the ring buffer's size");
  size_ = info.max_entries;
  consumer_page_ = ::mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (consumer_page_ == MAP_FAILED) {
    consumer_page_ = nullptr;
    fail("mapping the ring buffer's consumer page");
  }
  // The producer page and the data, once (offset: one page).
  producer_ = ::mmap(nullptr, page_ + size_, PROT_READ, MAP_SHARED, map_fd, static_cast<off_t>(page_));
  if (producer_ == MAP_FAILED) {
    producer_ = nullptr;
    const int e = errno;
    ::munmap(consumer_page_, page_);
    errno = e;
    fail("mapping the ring buffer");
  }
  data_ = static_cast<const std::byte*>(producer_) + page_;
}

RingReader::~RingReader() {
  ::munmap(producer_, page_ + size_);
  ::munmap(consumer_page_, page_);
}

bool RingReader::wait(int timeout_ms) const {
  pollfd p{map_fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, timeout_ms);
  if (n < 0 && errno != EINTR) fail("waiting for the ring buffer");
  return n > 0;
}

bool RingReader::next(std::span<const std::byte>& rec, uint64_t& after) {
  // Only we move the consumer position: a plain read of our own store.
  uint64_t pos = *static_cast<const uint64_t*>(consumer_page_);
  const uint64_t mask = size_ - 1;
  for (;;) {
    const uint64_t prod = load_acquire(producer_);
    if (pos >= prod) return false;
    const std::byte* hdr = data_ + (pos & mask);
    // Headers are 8-aligned and never cross the end.
    const uint32_t word = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
    if (word & BPF_RINGBUF_BUSY_BIT) return false;  // reserved, not yet committed
    const uint32_t len = word & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    const uint64_t next_pos = pos + ((static_cast<uint64_t>(len) + kHeaderBytes + 7) & ~7ull);
    if (word & BPF_RINGBUF_DISCARD_BIT) {
      release(next_pos);
      pos = next_pos;
      continue;
    }
    after = next_pos;
    const size_t off = static_cast<size_t>((pos & mask) + kHeaderBytes);
    if (off + len <= size_) {
      rec = {data_ + off, len};
      return true;
    }
    // The record runs past the end into the start of the data.
    wrapped_.resize(len);
    const size_t first = size_ - off;  // off <= size_: the header ended at or before the end
    std::memcpy(wrapped_.data(), data_ + off, first);
    std::memcpy(wrapped_.data() + first, data_, len - first);
    rec = {wrapped_.data(), len};
    return true;
  }
}

uint64_t RingReader::produced() const { return load_acquire(producer_); }

void RingReader::release(uint64_t pos) {
  __atomic_store_n(static_cast<uint64_t*>(consumer_page_), pos, __ATOMIC_RELEASE);
}

}  // namespace vmatrace
