#pragma once
// Where a VMA came from: every VMA change (they carry VMA ids) collected as
// a sink of the pipeline, then walked backwards from one VMA's id: each
// change that produced a tracked id is part of its history, and the ids it
// came from (split from, merged from) are tracked from there on back, into
// the parent's changes before the fork that copied it. Used by
// `replay --lineage` and by the live view's lineage panel (top).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/layout.h"
#include "core/processor.h"
#include "core/vma_changes.h"

namespace vmatrace {

class LineageLog : public RecordSink {
 public:
  // max_steps: the changes kept per process (0: all); a live view keeps the
  // most recent ones, and says when older history was dropped.
  explicit LineageLog(size_t max_steps = 0) : max_steps_(max_steps) {}

  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  void on_process_end(const ProcessState& p) override;

  struct Step {
    uint64_t ts = 0;
    uint32_t tid = 0;
    std::string cause;
    VmaChange change;
  };
  struct Entry {
    const Step* step;
    uint32_t pid;  // whose changes (a parent's, before the fork)
  };
  // The history of `vma` in pid, oldest first.
  std::vector<Entry> history(uint32_t pid, const Vma& vma) const;
  // The lines `replay --lineage` prints for the VMA covering addr in pid's
  // layout l: "# lineage of ..." then one line per step, times relative to
  // base. Empty when no VMA covers addr.
  std::vector<std::string> lines(uint32_t pid, const Layout& l, const std::string& comm, uint64_t addr,
                                 uint64_t base) const;
  // Whether pid's older changes were dropped (max_steps).
  bool truncated(uint32_t pid) const { return truncated_.count(pid) != 0; }

  // Processes that ended (exit, or the end of the stream): their layout then.
  const std::map<uint32_t, std::pair<Layout, std::string>>& ended() const { return final_; }

 private:
  std::map<uint32_t, std::deque<Step>> steps_;
  std::map<uint32_t, std::pair<Layout, std::string>> final_;
  // A traced child's parent and the moment of the fork: dup_mmap() copied
  // the parent's VMAs, and the child's copies keep the parent's ids.
  std::map<uint32_t, std::pair<uint32_t, uint64_t>> forked_from_;
  std::map<uint32_t, bool> truncated_;
  size_t max_steps_ = 0;
};

}  // namespace vmatrace
