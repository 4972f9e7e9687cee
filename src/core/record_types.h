#pragma once
// The one table of record types and their names, used by every output that
// names a record: the printer's JSON "event" (a public schema; a syscall
// record is named by its syscall there instead), `replay --records` and
// `info`'s counts.

#include <cstdint>

#include "vmatrace/abi/events.h"

namespace vmatrace {

struct RecordTypeName {
  uint32_t type;
  const char* name;
};

inline constexpr RecordTypeName kRecordTypes[] = {
    {VMAT_EV_SYSCALL, "syscall"},
    {VMAT_EV_FAULT, "fault"},
    {VMAT_EV_FORK, "fork"},
    {VMAT_EV_EXEC, "exec"},
    {VMAT_EV_EXIT, "exit"},
    {VMAT_EV_VMA_SNAPSHOT, "exec_vma"},  // the kernel's VMA walk at exec
    {VMAT_EV_FS, "fs"},
    {VMAT_EV_USER_STACK, "user_stack"},
    {VMAT_EV_VMA_KERNEL, "vma_store"},
    {VMAT_EV_NS_IDS, "ns_ids"},
    {VMAT_EV_EXEC_REFUSED, "exec_refused"},  // never recorded: the frontend stops there
    {VMAT_EV_CRED_REFUSED, "cred_refused"},  // never recorded: likewise
    {VMAT_EV_RSS_STAT, "rss_stat"},
    {VMAT_REC_LAYOUT, "layout"},
    {VMAT_REC_LOSS, "lost"},
    {VMAT_REC_NOTE, "note"},
    {VMAT_REC_FILE_DELETED, "file_deleted"},
    {VMAT_REC_NS_IDS, "ns_ids"},
    {VMAT_REC_RSS, "rss_scan"},
    {VMAT_REC_STACK_FRAMES, "user_stack"},  // a user stack unwound at record time
    {VMAT_REC_JIT_MAP, "jit_map"},
    {VMAT_REC_HOST_PATH, "host_path"},
};

// "fault", "exec_vma", ...; "unknown" for a type not in the table.
constexpr const char* record_type_name(uint32_t type) {
  for (const auto& t : kRecordTypes)
    if (t.type == type) return t.name;
  return "unknown";
}

}  // namespace vmatrace
