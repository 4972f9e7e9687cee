#include "trace/procfs.h"

#include <dirent.h>

#include <fstream>
#include <memory>
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

std::vector<pid_t> proc_descendants(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo{pid};
  while (!todo.empty()) {
    const std::string task_dir = "/proc/" + std::to_string(todo.back()) + "/task";
    todo.pop_back();
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(task_dir.c_str()), ::closedir);
    if (!dir) continue;  // gone meanwhile
    while (const dirent* e = ::readdir(dir.get())) {
      if (e->d_name[0] == '.') continue;
      std::ifstream children(task_dir + "/" + e->d_name + "/children");
      for (pid_t c; children >> c;) {
        out.push_back(c);
        todo.push_back(c);
      }
    }
  }
  return out;
}

std::optional<std::string> read_gate_vma_line() {
  std::istringstream in(read_text_file("/proc/self/maps"));
  std::string line;
  while (std::getline(in, line))
    if (line.find("[vsyscall]") != std::string::npos) return line;
  return std::nullopt;
}

}  // namespace vmatrace
