#pragma once
// Owns every kernel object of a trace: the skeleton (programs, maps, links)
// and the ring buffer reader. Lifecycle as libbpf-tools does it: open, pick
// programs per the AttachPlan (autoload off for the others), set rodata
// knobs, load, attach. Destruction detaches everything.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trace/features.h"

struct vmatrace_bpf;  // the bpftool skeleton
struct ring_buffer;  // libbpf
struct bpf_link;

namespace vmatrace {

struct LoaderOptions {
  uint64_t ringbuf_bytes = 64ull << 20;  // power of two
  uint64_t wakeup_bytes = 1ull << 20;    // force a wake-up past this fill level
  bool verbose = false;                  // forward libbpf's messages to stderr
};

class BpfTracer {
 public:
  using Handler = std::function<void(std::span<const std::byte>)>;

  // Opens, loads and attaches per `plan`. Throws UserError with a one-line
  // explanation (missing privilege, kernel refusal) on failure.
  BpfTracer(const AttachPlan& plan, const LoaderOptions& opts, Handler handler);
  ~BpfTracer();
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;

  // wait_exec: ignore the process until it execs (a command we spawn).
  void trace_pid(uint32_t tgid, bool follow, bool wait_exec = false);
  void untrace_pid(uint32_t tgid);
  bool is_traced(uint32_t tgid) const;
  size_t traced_count() const;

  // Waits up to timeout_ms for a wake-up, then drains whatever is queued
  // (records are submitted without wake-ups, so a timer drives the reads).
  // Returns the number of records handled.
  int poll(int timeout_ms);
  int drain();

  // Records dropped in the kernel, per traced process, since it was traced.
  std::map<uint32_t, uint64_t> lost() const;

 private:
  struct SkelDeleter {
    void operator()(struct ::vmatrace_bpf* s) const;
  };
  struct RingDeleter {
    void operator()(ring_buffer* r) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* l) const;
  };
  static int on_sample(void* ctx, void* data, size_t size);

  std::unique_ptr<struct ::vmatrace_bpf, SkelDeleter> skel_;
  // Declared after skel_: links are destroyed before the programs.
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  Handler handler_;
  int handled_ = 0;
};

}  // namespace vmatrace
