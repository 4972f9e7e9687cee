#include "trace/fault_perf.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

namespace vmatrace {
namespace {

int perf_event_open(perf_event_attr* attr, pid_t pid, int cpu) {
  return static_cast<int>(::syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

const char* config_name(uint64_t config) {
  return config == PERF_COUNT_SW_PAGE_FAULTS_MAJ ? "major-faults" : "minor-faults";
}

perf_event_attr fault_attr(uint64_t config) {
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof(attr);
  attr.config = config;
  // Every fault runs the program: no sampling, and a software event with
  // period 1 is not throttled (perf_swevent_overflow()'s first overflow).
  attr.sample_period = 1;
  attr.disabled = 1;  // enabled by the attach, once the program is there
  return attr;
}

// /sys/devices/system/cpu/online: "0-3,5".
std::vector<int> online_cpus() {
  std::vector<int> cpus;
  std::ifstream f("/sys/devices/system/cpu/online");
  std::string s;
  std::getline(f, s);
  size_t i = 0;
  while (i < s.size()) {
    size_t comma = s.find(',', i);
    std::string part = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    auto dash = part.find('-');
    try {
      int a = std::stoi(part.substr(0, dash));
      int b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
      for (int c = a; c <= b; c++) cpus.push_back(c);
    } catch (...) {
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  if (cpus.empty())
    for (long c = 0, n = ::sysconf(_SC_NPROCESSORS_ONLN); c < n; c++) cpus.push_back(static_cast<int>(c));
  return cpus;
}

}  // namespace

FaultPerfEvents FaultPerfEvents::open() {
  FaultPerfEvents ev;
  for (int cpu : online_cpus()) {
    for (auto config : {PERF_COUNT_SW_PAGE_FAULTS_MAJ, PERF_COUNT_SW_PAGE_FAULTS_MIN}) {
      perf_event_attr attr = fault_attr(config);
      int fd = perf_event_open(&attr, -1, cpu);
      if (fd < 0) {
        int e = errno;
        ev.major.clear();
        ev.minor.clear();
        ev.error = std::string("perf_event_open(") + config_name(config) + ", cpu " + std::to_string(cpu) +
                   "): " + std::strerror(e);
        return ev;
      }
      (config == PERF_COUNT_SW_PAGE_FAULTS_MAJ ? ev.major : ev.minor).emplace_back(fd);
    }
  }
  if (ev.major.empty()) ev.error = "no online CPUs found";
  return ev;
}

FaultPerfEvents FaultPerfEvents::open_task(pid_t tid) {
  FaultPerfEvents ev;
  for (auto config : {PERF_COUNT_SW_PAGE_FAULTS_MAJ, PERF_COUNT_SW_PAGE_FAULTS_MIN}) {
    perf_event_attr attr = fault_attr(config);
    attr.inherit = 1;
    int fd = perf_event_open(&attr, tid, -1);
    if (fd < 0) {
      int e = errno;
      ev.major.clear();
      ev.minor.clear();
      if (e != ESRCH)
        ev.error = std::string("perf_event_open(") + config_name(config) + ", thread " + std::to_string(tid) +
                   "): " + std::strerror(e);
      return ev;
    }
    (config == PERF_COUNT_SW_PAGE_FAULTS_MAJ ? ev.major : ev.minor).emplace_back(fd);
  }
  return ev;
}

std::string probe_fault_perf() { return FaultPerfEvents::open().error; }

}  // namespace vmatrace
