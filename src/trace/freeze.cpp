#include "trace/freeze.h"

#include <dirent.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <utility>

#include "util/time.h"

namespace vmatrace {
namespace {

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> out;
  const std::string dir_path = "/proc/" + std::to_string(pid) + "/task";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_path.c_str()), ::closedir);
  if (!dir) return out;
  while (const dirent* e = ::readdir(dir.get()))
    if (e->d_name[0] != '.') out.push_back(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)));
  return out;
}

}  // namespace

ProcessFreeze::ProcessFreeze(pid_t pid, OnReaped on_reaped, int timeout_ms)
    : pid_(pid), on_reaped_(std::move(on_reaped)) {
  // Threads started by a thread not yet stopped appear in a later listing;
  // once every listed thread is stopped, nobody is left to start one.
  for (int round = 0; round < 64; round++) {
    const size_t before = held_.size();
    if (!seize_new(pid, timeout_ms)) {
      release();
      return;
    }
    if (held_.size() == before) break;
  }
  frozen_ = !held_.empty();
  if (!frozen_) {
    why_not_ = "no thread to stop";
    release();
  }
}

ProcessFreeze::~ProcessFreeze() { release(); }

bool ProcessFreeze::seize_new(pid_t pid, int timeout_ms) {
  for (pid_t tid : threads_of(pid)) {
    if (std::any_of(held_.begin(), held_.end(), [&](const Held& h) { return h.tid == tid; })) continue;
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
      if (errno == ESRCH) continue;  // exited meanwhile
      why_not_ = std::string("ptrace: ") + std::strerror(errno);
      return false;
    }
    held_.push_back({tid, 0, false});
    if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 && errno != ESRCH) {
      why_not_ = std::string("ptrace interrupt: ") + std::strerror(errno);
      return false;
    }
    if (!wait_stopped(held_.back(), timeout_ms)) return false;
  }
  return true;
}

bool ProcessFreeze::wait_stopped(Held& h, int timeout_ms) {
  const uint64_t deadline = monotonic_ns() + static_cast<uint64_t>(timeout_ms) * 1'000'000;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(h.tid, &st, __WALL | WNOHANG);
    if (r == h.tid) {
      if (WIFEXITED(st) || WIFSIGNALED(st)) {
        reaped(h, st);
        return true;
      }
      // The interrupt's own stop (PTRACE_EVENT_STOP, also a group stop
      // under it), or a signal being delivered, which goes back at detach.
      if (WIFSTOPPED(st) && (st >> 16) != PTRACE_EVENT_STOP) h.signal = WSTOPSIG(st);
      h.stopped = true;
      return true;
    }
    if (r < 0 && errno != EINTR) {
      if (errno == ECHILD) {  // reaped elsewhere: gone
        h.tid = -1;
        return true;
      }
      why_not_ = std::string("waitpid: ") + std::strerror(errno);
      return false;
    }
    if (monotonic_ns() >= deadline) {
      why_not_ = "thread " + std::to_string(h.tid) + " did not stop within " + std::to_string(timeout_ms) + " ms";
      return false;
    }
    ::usleep(50);
  }
}

void ProcessFreeze::reaped(Held& h, int status) {
  if (on_reaped_) on_reaped_(h.tid, status);
  h.tid = -1;  // gone: nothing to let go
}

void ProcessFreeze::release() {
  // The leader last: a killed process's leader reports its end only once
  // every other thread is reaped, and those we hold are reaped here.
  std::stable_partition(held_.begin(), held_.end(), [&](const Held& h) { return h.tid != pid_; });
  for (Held& h : held_) let_go(h);
  held_.clear();
  frozen_ = false;
}

void ProcessFreeze::let_go(Held& h) {
  while (h.tid > 0) {
    if (h.stopped) {
      if (::ptrace(PTRACE_DETACH, h.tid, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(h.signal))) == 0 ||
          errno != ESRCH)
        return;
      h.stopped = false;  // SIGKILLed meanwhile (that ends a ptrace stop): reaped below
    }
    // Not in a stop: one that did not stop in time (blocked in the kernel)
    // is waited for, or it would stop later with nobody to let it go; a
    // killed one stays a zombie until its tracer reaps it, and keeps its
    // process's leader from being reaped by its parent.
    int st = 0;
    const pid_t r = ::waitpid(h.tid, &st, __WALL);
    if (r == h.tid && (WIFEXITED(st) || WIFSIGNALED(st))) {
      reaped(h, st);
    } else if (r == h.tid && WIFSTOPPED(st)) {
      h.stopped = true;
      if ((st >> 16) != PTRACE_EVENT_STOP) h.signal = WSTOPSIG(st);
    } else if (r < 0 && errno != EINTR) {
      h.tid = -1;  // gone
    }
  }
}

}  // namespace vmatrace
