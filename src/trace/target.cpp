#include "trace/target.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

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

char proc_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
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
  if (!have_cap_sys_ptrace())
    if (std::string why = ptrace_refusal(pid); !why.empty())
      throw UserError("not allowed to trace pid " + std::to_string(pid) + ": " + why);
}

bool have_cap_sys_ptrace() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    constexpr unsigned kCapSysPtrace = 19;  // linux/capability.h
    return (std::strtoull(line.c_str() + 7, nullptr, 16) >> kCapSysPtrace) & 1;
  }
  return false;
}

std::string ptrace_refusal(pid_t pid) {
  const std::string mem = "/proc/" + std::to_string(pid) + "/mem";
  int fd = ::open(mem.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return "";
  }
  if (errno == ENOENT || errno == ESRCH) return "";  // gone: its exit record ends it
  struct stat st {};
  std::string owner = ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0
                          ? "it belongs to uid " + std::to_string(st.st_uid) + ", "
                          : "";
  return owner + "you are uid " + std::to_string(::getuid()) +
         ", and without CAP_SYS_PTRACE vmatrace traces only processes you may ptrace (same user, not setuid or "
         "undumpable, as kernel.yama.ptrace_scope allows); run as root or grant CAP_SYS_PTRACE";
}

}  // namespace vmatrace
