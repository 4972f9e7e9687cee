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

// A thread's ids in the PID namespace it lives in (the last NStgid and
// NSpid of /proc/PID/task/TID/status), nspid 0 when that is the namespace
// /proc belongs to (no other ids). nullopt: the thread is gone.
std::optional<NsIdsRecord> read_ns_ids(pid_t pid, pid_t tid);

// The host pid of the process whose pid is `nspid` in the PID namespace of
// process `member` (`--pidns MEMBER -p NSPID`). Throws UserError naming
// what was not found.
pid_t resolve_ns_pid(pid_t member, pid_t nspid);

// --cgroup PATH: the cgroup v2 id of that directory (its inode, which
// bpf_get_current_cgroup_id() and css_set.dfl_cgrp->kn->id give). Throws
// UserError when it does not exist or is not on a cgroup2 filesystem.
uint64_t cgroup_v2_id(const std::string& path);
// The processes in that cgroup and its descendants now (their cgroup.procs).
std::vector<pid_t> cgroup_members(const std::string& path);

}  // namespace vmatrace
