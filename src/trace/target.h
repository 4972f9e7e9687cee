#pragma once
// The traced target: spawning the command (fork, held before exec until the
// tracer knows its pid, ptrace stop at exec, dropped credentials), checking
// a pid to attach to, and the bits of /proc the event loop reads about it.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace vmatrace {

// The credentials -- CMD runs with.
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (initgroups semantics)
};
// Resolves TraceOptions::user (or the sudo environment); std::nullopt: keep
// ours. Throws UserError for an unknown user or a malformed SUDO_UID.
std::optional<RunAs> resolve_run_as(const std::string& user);

// The first `argv[0]` execvp would run, or empty: lets us say "command not
// found" before forking, as a shell does.
std::string resolve_command(const std::string& cmd);

// A command forked and held before its exec until release(), so that the
// tracer can be told its pid before it does anything.
class HeldChild {
 public:
  // Throws UserError when the pipes or the fork fail. stop_at_exec: the
  // child asks to be traced (PTRACE_TRACEME), so it stops at its exec.
  HeldChild(const std::vector<std::string>& argv, const std::optional<RunAs>& run_as, bool stop_at_exec);
  pid_t pid() const { return pid_; }
  // Lets it go. Returns 0, or the errno of the exec (or credential change)
  // that failed: the child has then been reaped. Throws UserError when the
  // child cannot be told to go.
  int release();
  // stop_at_exec: waits for the stop at its exec; true when it stopped.
  bool wait_exec_stop();
  // Ends the ptrace of stop_at_exec: it runs on.
  void detach();

 private:
  UniqueFd go_w_, status_r_;
  pid_t pid_ = -1;
};

// Throws UserError unless pid is a process we may trace: it exists and,
// without CAP_SYS_PTRACE, the kernel would let us ptrace it.
void check_attachable(pid_t pid);

// Whether this process holds CAP_SYS_PTRACE (root normally does). Without
// it, vmatrace traces only what the invoking user could ptrace: holding
// CAP_BPF and CAP_PERFMON must not reveal other users' layouts and stacks.
bool have_cap_sys_ptrace();
// This process's effective capability set (CapEff of /proc/self/status).
uint64_t effective_capabilities();
// The kernel's own answer to "may I ptrace pid" (ptrace_may_access() with
// PTRACE_MODE_ATTACH: same uid, dumpable, Yama's ptrace_scope, or
// CAP_SYS_PTRACE), asked by opening /proc/PID/mem, which neither stops nor
// changes the process. A process that has exited but is not reaped yet
// (its records may still be queued) is judged by its credentials, as the
// kernel judges an exited task. Fail-closed: kGone when the answer could
// not be had (the process is reaped, or Yama's rules cannot be asked),
// and a process whose permission was not established is not followed.
struct PtraceAccess {
  enum class Verdict { kAllowed, kRefused, kGone };
  Verdict verdict = Verdict::kGone;
  std::string why;  // kRefused: why not, for the user
  bool allowed() const { return verdict == Verdict::kAllowed; }
  bool gone() const { return verdict == Verdict::kGone; }
};
PtraceAccess ptrace_access(pid_t pid);
// Whether exec'ing path could have changed what ptrace allows: a set-user-
// or set-group-ID file, one with file capabilities, or one we cannot read
// (would_dump() makes the process undumpable); true when it cannot be told
// (a relative path, a file gone). For an exec whose process was reaped
// before it could be asked: an exec of any other file keeps its
// credentials, and so the permission it had.
bool exec_may_change_credentials(const std::string& path);

// /proc/PID/comm, or empty.
std::string read_comm(pid_t pid);
// The state letter of /proc/PID/stat, or 0 when the process is gone.
char proc_state(pid_t pid);

}  // namespace vmatrace
