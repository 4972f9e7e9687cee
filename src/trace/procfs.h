#pragma once
// Reading a live process's layout from /proc, as a record for the stream.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/records.h"

namespace vmatrace {

// /proc/PID/smaps (exact vm_flags) and stat, as a VMAT_REC_LAYOUT payload.
// Throws std::runtime_error when the process is gone.
LayoutRecord read_proc_layout_record(pid_t pid);

// pid's descendants (children of any of its threads, their children, ...),
// parents before their children, from /proc/PID/task/TID/children.
std::vector<pid_t> proc_descendants(pid_t pid);

// This machine's gate VMA line ("[vsyscall]") as /proc/self/maps prints it:
// /proc shows it for every process but no VMA walk does.
std::optional<std::string> read_gate_vma_line();

}  // namespace vmatrace
