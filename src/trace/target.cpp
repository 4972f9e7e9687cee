#include "trace/target.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "trace/yama.h"
#include "util/errors.h"

namespace vmatrace {

std::string resolve_command(const std::string& cmd) {
  if (cmd.find('/') != std::string::npos) return ::access(cmd.c_str(), X_OK) == 0 ? cmd : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string full = (dir.empty() ? "." : dir) + "/" + cmd;
    struct stat st;
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0) return full;
  }
  return "";
}

std::string read_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

namespace {

// /proc/PID/stat from field 3 (state) on: comm, before it, is parenthesised
// and may hold spaces and ')'. Empty when the process is gone.
std::string stat_after_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return {};
  return stat.substr(close + 2);
}

}  // namespace

char proc_state(pid_t pid) {
  const std::string fields = stat_after_comm(pid);
  return fields.empty() ? 0 : fields[0];
}

std::optional<RunAs> resolve_run_as(const std::string& user) {
  auto with_groups = [](RunAs r, const char* name) {
    r.groups = {r.gid};
    if (name) {
      int n = 64;
      std::vector<gid_t> g(static_cast<size_t>(n));
      if (::getgrouplist(name, r.gid, g.data(), &n) < 0) {
        g.resize(static_cast<size_t>(n));
        if (::getgrouplist(name, r.gid, g.data(), &n) < 0) n = 0;
      }
      if (n > 0) r.groups.assign(g.begin(), g.begin() + n);
    }
    return r;
  };
  if (!user.empty()) {
    const struct passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
      // strace -u accepts only names; a number is handy in containers.
      char* end = nullptr;
      unsigned long uid = std::strtoul(user.c_str(), &end, 10);
      if (user.empty() || *end || !(pw = ::getpwuid(static_cast<uid_t>(uid))))
        throw UserError("--user " + user + ": no such user");
    }
    if (::geteuid() != 0 && pw->pw_uid != ::geteuid())
      throw UserError("--user " + user + ": only root can run the command as another user");
    return with_groups(RunAs{pw->pw_uid, pw->pw_gid, {}}, pw->pw_name);
  }
  const char* su = std::getenv("SUDO_UID");
  if (!su || !*su || ::geteuid() != 0) return std::nullopt;
  const char* sg = std::getenv("SUDO_GID");
  auto parse_id = [](const char* s, const char* what) {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(s, &end, 10);
    if (errno || !*s || *end || v > 0xfffffffeul) throw UserError(std::string("malformed ") + what + "=" + s);
    return static_cast<uint32_t>(v);
  };
  RunAs r;
  r.uid = parse_id(su, "SUDO_UID");
  if (r.uid == 0) return std::nullopt;  // sudo from root: nothing to drop
  const struct passwd* pw = ::getpwuid(r.uid);
  r.gid = sg && *sg ? parse_id(sg, "SUDO_GID") : pw ? pw->pw_gid : r.uid;
  return with_groups(r, pw ? pw->pw_name : nullptr);
}

HeldChild::HeldChild(const std::vector<std::string>& argv, const std::optional<RunAs>& run_as, bool stop_at_exec) {
  int go[2], status_pipe[2];
  if (::pipe2(go, O_CLOEXEC) || ::pipe2(status_pipe, O_CLOEXEC))
    throw UserError(std::string("pipe: ") + std::strerror(errno));
  UniqueFd go_r(go[0]), go_w(go[1]), st_r(status_pipe[0]), st_w(status_pipe[1]);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw UserError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    char c;
    if (::read(go_r.get(), &c, 1) != 1) ::_exit(127);
    // Drop to the invoking user before exec: groups, then gid, then uid (once
    // the uid is gone we could no longer change the others). A failure is
    // reported like a failed exec rather than running the command as root.
    if (run_as &&
        (::setgroups(run_as->groups.size(), run_as->groups.data()) || ::setgid(run_as->gid) || ::setuid(run_as->uid))) {
      int e = errno;
      [[maybe_unused]] auto n = ::write(st_w.get(), &e, sizeof(e));
      ::_exit(126);
    }
    if (stop_at_exec) ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::execvp(cargv[0], cargv.data());
    int e = errno;
    [[maybe_unused]] auto n = ::write(st_w.get(), &e, sizeof(e));
    ::_exit(127);
  }
  pid_ = pid;
  go_w_ = std::move(go_w);
  status_r_ = std::move(st_r);
}

int HeldChild::release() {
  if (::write(go_w_.get(), "g", 1) != 1) throw UserError(std::string("starting the command: ") + std::strerror(errno));
  int e = 0;
  ssize_t n = ::read(status_r_.get(), &e, sizeof(e));
  if (n != static_cast<ssize_t>(sizeof(e))) return 0;  // exec closed the pipe: it runs
  int st;
  ::waitpid(pid_, &st, 0);
  return e;
}

bool HeldChild::wait_exec_stop() {
  int st = 0;
  return ::waitpid(pid_, &st, 0) == pid_ && WIFSTOPPED(st);
}

void HeldChild::detach() { ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr); }

void check_attachable(pid_t pid) {
  // EPERM: it exists, and may not be signalled; whether it may be traced is
  // the ptrace question below.
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM))
    throw UserError("no process with pid " + std::to_string(pid));
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid)).c_str(), &st) != 0)
    throw UserError("no process with pid " + std::to_string(pid));
  if (have_cap_sys_ptrace()) return;
  const PtraceAccess access = ptrace_access(pid);
  if (access.gone()) throw UserError("process " + std::to_string(pid) + " has exited: nothing to trace");
  if (!access.allowed()) throw UserError("not allowed to trace pid " + std::to_string(pid) + ": " + access.why);
}

bool exec_may_change_credentials(const std::string& path) {
  struct stat st {};
  if (path.empty() || path[0] != '/' || ::stat(path.c_str(), &st) != 0) return true;
  if (st.st_mode & (S_ISUID | S_ISGID)) return true;
  if (::getxattr(path.c_str(), "security.capability", nullptr, 0) >= 0 || errno != ENODATA) return true;
  return ::access(path.c_str(), R_OK) != 0;
}

uint64_t effective_capabilities() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
  return 0;
}

bool have_cap_sys_ptrace() {
  constexpr unsigned kCapSysPtrace = 19;  // linux/capability.h
  return (effective_capabilities() >> kCapSysPtrace) & 1;
}

namespace {

// A zombie ('Z') or a dead task ('X'): it has exited, its memory is gone,
// its records may still be queued.
bool is_exited(char state) { return state == 'Z' || state == 'X'; }

pid_t parent_of(pid_t pid) {
  const std::string fields = stat_after_comm(pid);  // "S PPID ..."
  if (fields.size() < 3) return 0;
  return static_cast<pid_t>(std::strtol(fields.c_str() + 2, nullptr, 10));
}

// Whether pid is vmatrace or one of its descendants, as Yama's
// task_is_descendant() walks real_parent (/proc's ppid) up to init.
bool is_our_descendant(pid_t pid) {
  const pid_t self = ::getpid();
  for (int depth = 0; pid > 1 && depth < 4096; depth++) {
    if (pid == self) return true;
    pid = parent_of(pid);
  }
  return false;
}

// Yama's judgement of pid for vmatrace (which lacks CAP_SYS_PTRACE here).
// Whether the process named vmatrace with PR_SET_PTRACER cannot be seen.
YamaVerdict yama_verdict(pid_t pid) {
  return yama_judge(yama_ptrace_scope(), YamaTracee{is_our_descendant(pid), std::nullopt}, false);
}

std::string refusal_text(pid_t pid, const std::string& proc) {
  struct stat st {};
  // The directory keeps the task's euid even when its files no longer do.
  const bool known = ::stat(proc.c_str(), &st) == 0;
  // Our own user's: what refused it is likely Yama, when there is one.
  if (const YamaVerdict yama = yama_verdict(pid); known && st.st_uid == ::geteuid() && !yama.allowed())
    return "it belongs to you (uid " + std::to_string(st.st_uid) + "), but " + yama.why;
  std::string owner = known ? "it belongs to uid " + std::to_string(st.st_uid) + ", " : "";
  return owner + "you are uid " + std::to_string(::getuid()) +
         ", and without CAP_SYS_PTRACE vmatrace traces only processes you may ptrace (same user, not setuid or "
         "undumpable, as kernel.yama.ptrace_scope allows); run as root or grant CAP_SYS_PTRACE";
}

// A process that exited but is not reaped yet has no mm: /proc/PID/mem then
// opens without the ptrace check (proc_mem_open()) or, for a user, not at
// all (its files belong to root: task_dump_owner()). The kernel's check of
// its credentials is kcmp()'s ptrace_may_access(PTRACE_MODE_READ_REALCREDS):
// same uids and gids, no capability we lack (an mm-less task has no
// dumpable flag to check). Read mode is not Yama's business, so Yama's
// attach rule is applied here (yama_judge()): refused by scope 2 or 3, and
// by scope 1 unless it is our descendant (whether it named us with
// PR_SET_PTRACER cannot be told: gone). Anything unanswered: gone
// (fail-closed).
PtraceAccess exited_access(pid_t pid, const std::string& proc) {
  using V = PtraceAccess::Verdict;
  if (const YamaVerdict yama = yama_verdict(pid); !yama.allowed())
    return yama.refused() ? PtraceAccess{V::kRefused, yama.why} : PtraceAccess{V::kGone, ""};
  constexpr int kKcmpVm = 1;  // linux/kcmp.h
  if (::syscall(SYS_kcmp, ::getpid(), pid, kKcmpVm, 0, 0) >= 0) return {V::kAllowed, ""};
  if (errno == EPERM) return {V::kRefused, refusal_text(pid, proc)};
  return {V::kGone, ""};  // ESRCH (reaped meanwhile), ENOSYS (no kcmp)
}

PtraceAccess ptrace_access_by_proc(pid_t pid) {
  using V = PtraceAccess::Verdict;
  const std::string proc = "/proc/" + std::to_string(pid);
  // Again only when the answer raced with an exec (the mem opened was the
  // old program's) and the process is still there.
  for (int attempt = 0; attempt < 3; attempt++) {
    UniqueFd mem(::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem && (errno == ENOENT || errno == ESRCH)) return {V::kGone, ""};
    const bool refused = !mem;
    // The open asked ptrace_may_access() only if the process had an mm; a
    // read tells: 0 bytes when there is no live mm (mem_rw()), else a byte
    // or EIO (page 0 is not mapped).
    char c;
    if (!refused && ::pread(mem.get(), &c, 1, 0) != 0) return {V::kAllowed, ""};
    const char state = proc_state(pid);
    if (state == 0) return {V::kGone, ""};
    if (is_exited(state)) return exited_access(pid, proc);
    if (refused) return {V::kRefused, refusal_text(pid, proc)};
  }
  return {V::kGone, ""};
}

}  // namespace

PtraceAccess ptrace_access(pid_t pid) {
  using V = PtraceAccess::Verdict;
  // The /proc reads are about whichever process holds the number then: had
  // pid been reaped and reused meanwhile, the answer would be another
  // process's. A pidfd taken before them names one process; that it can
  // still be signalled after them (signal 0: EPERM also means it is there)
  // proves the number named it all along. A zombie can still be signalled.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd && errno == ESRCH) return {V::kGone, ""};
  PtraceAccess access = ptrace_access_by_proc(pid);
  if (pidfd && !access.gone() && ::syscall(SYS_pidfd_send_signal, pidfd.get(), 0, nullptr, 0) != 0 && errno == ESRCH)
    return {V::kGone, ""};
  return access;
}

}  // namespace vmatrace
