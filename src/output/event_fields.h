#pragma once
// The one step from an applied record to its fields (output/fields.h): what
// every event shows, in order, for the text and the JSON encoder alike.
// Syscall arguments come from the syscall table (vmatrace/abi/syscalls.h):
// each argument's JSON name and kind, the kind of the result.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/processor.h"
#include "output/fields.h"

namespace vmatrace {

class EventFields {
 public:
  // The fields every event starts with: ts, pid, tid, (nspid, nstid when
  // the thread is in another PID namespace), comm.
  static void header(const DecodedRecord& rec, FieldList& out, const NsIdsRecord& ns = {});
  // rec's whole event: header, "event", its own fields, the VMAs it
  // resulted in and the VMA changes it made. `layout` names the VMAs.
  // Views in `out` point into rec, applied and this object's caches.
  void record(const DecodedRecord& rec, const Applied& applied, const Layout* layout, FieldList& out);

 private:
  void syscall(const DecodedRecord& rec, FieldList& out);
  // The name of an argument's value (PROT_READ|PROT_WRITE, MADV_DONTNEED,
  // ENOMEM, ...), decoded once per distinct value: they repeat endlessly.
  std::string_view value_name(int kind, uint64_t v);

  // By VMAT_ARGK_* kind; kErrno for results.
  static constexpr int kErrno = 0;
  std::array<std::unordered_map<uint64_t, std::string>, 16> names_;
};

}  // namespace vmatrace
