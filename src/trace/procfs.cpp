#include "trace/procfs.h"

#include <sstream>

#include "core/proc_maps.h"

namespace vmatrace {

LayoutRecord read_proc_layout_record(pid_t pid) {
  ProcSnapshot snap = read_proc_snapshot(pid);
  LayoutRecord l;
  l.start_brk = snap.start_brk;
  l.brk = snap.brk;
  l.start_stack = snap.start_stack;
  l.vmas = std::move(snap.vmas);
  return l;
}

std::optional<std::string> read_gate_vma_line() {
  std::istringstream in(read_text_file("/proc/self/maps"));
  std::string line;
  while (std::getline(in, line))
    if (line.find("[vsyscall]") != std::string::npos) return line;
  return std::nullopt;
}

}  // namespace vmatrace
