#pragma once
// A checkpoint: the frontend's whole state after some record of a stream,
// as bytes, so that a reader can start there instead of at the first record
// (replay --at, --diff: docs/recording-format.md, "Checkpoints"). The
// recorder saves its own Processor's state every few MiB of records; a
// reader restores it into a fresh Processor and applies the records after
// it, which then leave that Processor exactly as a replay from the start
// would have (every process's layout with its VMA ids, what each awaits,
// the kernel stores pending per thread), and the loss windows known so far.
//
// Not kept: the Processor's counters (stats()) and the summaries of ended
// processes, which only whole-recording reports show, and which a reader
// that starts from a checkpoint must not print.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/loss_windows.h"
#include "core/processor.h"
#include "core/records.h"

namespace vmatrace {

class Checkpoint {
 public:
  // Sees each record after the Processor applied it (the same records, in
  // the same order): what the checkpoint keeps beside the Processor.
  void observe(const DecodedRecord& d) {
    records_++;
    if (LossWindows::wanted(d.type)) windows_.add(d);
    if (d.type != VMAT_REC_NOTE && d.hdr.ts > last_ts_) last_ts_ = d.hdr.ts;
  }
  // Whether p's state can be saved now: not while it holds an exec's
  // faults for the layout that comes after it (a moment later it can).
  static bool can_save(const Processor& p) { return p.exec_faults_.empty(); }
  // p's state and what observe() kept, as bytes. Call only when can_save().
  std::vector<std::byte> save(const Processor& p) const;

  // What a checkpoint gives back beside the Processor.
  struct Restored {
    LossWindows windows;   // as a LossWindows fed every record before it
    uint64_t last_ts = 0;  // the largest ts of a record before it other than a note
    uint64_t records = 0;  // records before it (those that decode)
  };
  // Restores `state` into p, a Processor that has applied no record.
  // false (why set, p unusable) when the bytes are not a checkpoint this
  // version reads, or do not check out.
  static bool restore(std::span<const std::byte> state, Processor& p, Restored& out, std::string* why);

 private:
  LossWindows windows_;
  uint64_t last_ts_ = 0;
  uint64_t records_ = 0;
};

}  // namespace vmatrace
