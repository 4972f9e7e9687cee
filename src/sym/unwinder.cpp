#include "sym/unwinder.h"

#include <cxxabi.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>

#include "sym/debuginfo.h"

namespace vmatrace {
namespace {

// libdw's default search path (next to the binary, its .debug/, then
// /usr/lib/debug), then each --debug-dir.
std::string debuginfo_path(const SymbolSources* sources) {
  std::string path = ":.debug:/usr/lib/debug";
  if (sources)
    for (const auto& d : sources->debug_dirs) path += ":" + d;
  return path;
}

// The debug file of build id `id` under one of the --debug-dirs.
std::string debug_file_for(const SymbolSources* sources, const std::string& path) {
  if (!sources) return {};
  auto it = sources->build_ids.find(path);
  if (it == sources->build_ids.end() || it->second.size() < 3) return {};
  const std::string& id = it->second;
  for (const auto& d : sources->debug_dirs) {
    std::string f = d + "/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
    if (::access(f.c_str(), R_OK) == 0) return f;
  }
  return {};
}

// dwfl_module_getsrc() finds the compile unit through .debug_aranges,
// which clang does not emit unless asked (-gdwarf-aranges): then ask each
// compile unit whether its ranges hold the address.
void source_from_cu_ranges(Dwfl_Module* mod, uint64_t addr, std::string& file_out, int& line_out) {
  Dwarf_Addr bias = 0;
  for (Dwarf_Die* cu = dwfl_module_nextcu(mod, nullptr, &bias); cu; cu = dwfl_module_nextcu(mod, cu, &bias)) {
    if (dwarf_haspc(cu, addr - bias) != 1) continue;
    Dwarf_Line* line = dwarf_getsrc_die(cu, addr - bias);
    int lineno = 0;
    const char* file = line ? dwarf_linesrc(line, nullptr, nullptr) : nullptr;
    if (file && dwarf_lineno(line, &lineno) == 0) {
      file_out = file;
      line_out = lineno;
    }
    return;
  }
}

void lookup_source_line(Dwfl_Module* mod, uint64_t lookup, std::string& file_out, int& line_out) {
  if (Dwfl_Line* line = dwfl_module_getsrc(mod, lookup)) {
    int lineno = 0;
    if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
      file_out = file;
      line_out = lineno;
    }
  } else {
    source_from_cu_ranges(mod, lookup, file_out, line_out);
  }
}

}  // namespace

std::string demangle(const std::string& symbol) {
  if (!symbol.starts_with("_Z")) return symbol;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> d(::abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status),
                                                &std::free);
  return status == 0 && d ? std::string(d.get()) : symbol;
}

struct Unwinder::State {
  DebuginfoSearch search;
  char* debuginfo_path_c = nullptr;  // search.path's, for libdw
  Dwfl_Callbacks callbacks{};
  struct DwflDeleter {
    void operator()(Dwfl* d) const { dwfl_end(d); }
  };
  std::unique_ptr<Dwfl, DwflDeleter> dwfl;
  uint32_t pid = 0;
  const StackSample* sample = nullptr;  // the one being unwound
  bool thread_given = false;
  std::vector<uint64_t>* pcs = nullptr;
  size_t max_frames = 0;
  JitSymbols* jit = nullptr;
  std::string jitdump;  // a mapping named jit-N.dump: perf's jitdump, maybe the process's
  // Symbolized frames by (pc, activation): elfutils looks symbols up by a
  // linear scan of the symbol table (~1 ms in libc), and growth stacks
  // repeat the same few return addresses.
  std::unordered_map<uint64_t, StackFrame> symbols;
  FrameCache* shared = nullptr;  // other processes' frames, by build id

  static pid_t next_thread(Dwfl*, void* arg, void** thread_arg) {
    auto* st = static_cast<State*>(arg);
    if (st->thread_given || !st->sample) return 0;
    st->thread_given = true;
    *thread_arg = st;
    return static_cast<pid_t>(st->sample->tid);
  }
  static bool get_thread(Dwfl*, pid_t tid, void* arg, void** thread_arg) {
    auto* st = static_cast<State*>(arg);
    if (!st->sample || static_cast<uint32_t>(tid) != st->sample->tid) return false;
    *thread_arg = st;
    return true;
  }
  // Only the copied stack is readable: what CFI needs to find return
  // addresses and saved registers lies there.
  static bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
    auto* st = static_cast<State*>(arg);
    const StackSample* s = st->sample;
    if (!s) return false;
    uint64_t sp = s->regs[VMAT_UREG_SP];
    if (addr < sp || addr - sp > s->stack.size() || s->stack.size() - (addr - sp) < sizeof(Dwarf_Word)) return false;
    std::memcpy(result, s->stack.data() + (addr - sp), sizeof(Dwarf_Word));
    return true;
  }
  static bool set_initial_registers(Dwfl_Thread* thread, void* thread_arg) {
    auto* st = static_cast<State*>(thread_arg);
    Dwarf_Word regs[VMAT_UREGS];
    for (int i = 0; i < VMAT_UREGS; i++) regs[i] = st->sample->regs[i];
    if (!dwfl_thread_state_registers(thread, 0, VMAT_UREGS, regs)) return false;
    dwfl_thread_state_register_pc(thread, regs[VMAT_UREG_IP]);
    return true;
  }
  static int on_frame(Dwfl_Frame* frame, void* arg) {
    auto* st = static_cast<State*>(arg);
    Dwarf_Addr pc = 0;
    bool activation = false;
    if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
    // pc is at least 1 byte into user space, so bit 63 is free for the flag.
    st->pcs->push_back(pc | (activation ? VMAT_USTACK_PC_EXACT : 0));
    return st->pcs->size() >= st->max_frames ? DWARF_CB_ABORT : DWARF_CB_OK;
  }

  // A frame in no module: code a runtime generated, named by its perf map
  // as it was at ts (not cached: the runtime reuses addresses for new code).
  void name_jit_frame(StackFrame& f, uint64_t ts, bool activation) const {
    if (!jit) return;
    const uint64_t lookup = activation ? f.pc : f.pc - 1;
    const JitCode* c = jit->find(pid, ts, lookup, jitdump);
    if (!c) return;
    f.symbol = f.function = c->name;
    f.offset = f.pc - c->start;
    f.module = kJitModule;
  }

  // key: a pc as unwind_pcs() gives it (VMAT_USTACK_PC_EXACT included).
  const StackFrame& symbolize_cached(uint64_t key) {
    auto it = symbols.find(key);
    if (it != symbols.end()) return it->second;
    if (symbols.size() > 65536) symbols.clear();
    return symbols.emplace(key, symbolize_shared(key & ~VMAT_USTACK_PC_EXACT, key & VMAT_USTACK_PC_EXACT))
        .first->second;
  }

  // Through the cache shared by all processes when the module has a build
  // id: the same object's frame at the same offset is the same frame.
  StackFrame symbolize_shared(uint64_t pc, bool activation) {
    const uint64_t lookup = activation ? pc : pc - 1;
    Dwfl_Module* mod = shared ? dwfl_addrmodule(dwfl.get(), lookup) : nullptr;
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0, start = 0;
    const char* name = nullptr;
    if (!mod || dwfl_module_build_id(mod, &bits, &vaddr) < 16 ||
        !(name = dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr)))
      return symbolize(pc, activation);
    FrameCache::Key k;
    std::memcpy(&k.id0, bits, 8);
    std::memcpy(&k.id1, bits + 8, 8);
    k.offset = (lookup - start) | (activation ? 1ull << 63 : 0);
    if (const StackFrame* f = shared->find(k)) {
      StackFrame out = *f;
      out.pc = pc;
      out.module = name;  // as this process sees the object
      return out;
    }
    StackFrame f = symbolize(pc, activation);
    shared->insert(k, f);
    return f;
  }

  // Source lines by lookup address (pc, or pc - 1 for a return address).
  std::unordered_map<uint64_t, std::pair<std::string, int>> lines;

  const std::pair<std::string, int>& source_line_cached(uint64_t lookup) {
    auto it = lines.find(lookup);
    if (it != lines.end()) return it->second;
    if (lines.size() > 65536) lines.clear();
    std::pair<std::string, int> fl;
    if (Dwfl_Module* mod = dwfl_addrmodule(dwfl.get(), lookup)) {
      if (const auto* shared_fl = source_line_shared(mod, lookup))
        fl = *shared_fl;
      else
        lookup_source_line(mod, lookup, fl.first, fl.second);  // reads this Dwfl's copy of the DWARF
    }
    return lines.emplace(lookup, std::move(fl)).first->second;
  }

  // Through the FrameCache's Dwfl of the object, by build id; null without
  // a shared cache or a build id, or when the file does not open.
  const std::pair<std::string, int>* source_line_shared(Dwfl_Module* mod, uint64_t lookup) {
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0;
    Dwarf_Addr start = 0;
    const char* file = nullptr;
    if (!shared || dwfl_module_build_id(mod, &bits, &vaddr) < 16 ||
        !dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, &file, nullptr) || !file)
      return nullptr;
    FrameCache::Key k;
    std::memcpy(&k.id0, bits, 8);
    std::memcpy(&k.id1, bits + 8, 8);
    k.offset = lookup - start;
    return shared->source_line(k, file, search);
  }

  StackFrame symbolize(uint64_t pc, bool activation) {
    StackFrame f;
    f.pc = pc;
    f.activation = activation;
    // A return address points after the call: look up the call itself.
    uint64_t lookup = activation ? pc : pc - 1;
    Dwfl_Module* mod = dwfl_addrmodule(dwfl.get(), lookup);
    if (!mod) return f;
    const char* mainfile = nullptr;
    const char* name = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, &mainfile, nullptr);
    f.module = name ? name : "";
    GElf_Off off = 0;
    GElf_Sym sym;
    if (const char* s = dwfl_module_addrinfo(mod, lookup, &off, &sym, nullptr, nullptr, nullptr)) {
      f.symbol = s;
      // "pthread_create@GLIBC_2.2.5": the version is not part of the name.
      f.function = demangle(f.symbol.substr(0, f.symbol.find('@')));
      f.offset = off + (pc - lookup);
    }
    return f;
  }
};

// An object's own Dwfl, at its link-time addresses: one for the run,
// whichever process's path opened it.
struct FrameCache::Object {
  struct DwflDeleter {
    void operator()(Dwfl* d) const { dwfl_end(d); }
  };
  // The debug-info search of the run (--debug-dir, --debuginfod), as the
  // Unwinders' own Dwfls do it; it outlives the Dwfl (declared before it).
  DebuginfoSearch search;
  char* debuginfo_path_c = nullptr;
  Dwfl_Callbacks callbacks{};
  std::unique_ptr<Dwfl, DwflDeleter> dwfl;
  Dwfl_Module* mod = nullptr;
  uint64_t low = 0;  // where the module starts (its first segment's vaddr)

  Object(const char* file, const DebuginfoSearch& how) : search(how) {
    debuginfo_path_c = search.path.data();
    callbacks.find_elf = dwfl_build_id_find_elf;
    callbacks.find_debuginfo = find_debuginfo;
    callbacks.section_address = dwfl_offline_section_address;
    callbacks.debuginfo_path = &debuginfo_path_c;
    dwfl.reset(dwfl_begin(&callbacks));
    if (!dwfl) return;
    dwfl_report_begin(dwfl.get());
    mod = dwfl_report_elf(dwfl.get(), file, file, -1, 0, false);
    if (mod) set_debuginfo_search(mod, &search);
    dwfl_report_end(dwfl.get(), nullptr, nullptr);
    Dwarf_Addr start = 0;
    if (mod) dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
    low = start;
  }
};

FrameCache::FrameCache() = default;
FrameCache::~FrameCache() = default;

const std::pair<std::string, int>* FrameCache::source_line(const Key& k, const char* file,
                                                           const DebuginfoSearch& search) {
  if (auto it = lines_.find(k); it != lines_.end()) return &it->second;
  if (lines_.size() >= (1u << 18)) lines_.clear();  // bounded as frames_ is
  if (disk_)
    if (const auto* kept = disk_->find(k.id0, k.id1, k.offset)) return &lines_.emplace(k, *kept).first->second;
  const Key id{k.id0, k.id1, 0};
  auto [it, fresh] = objects_.try_emplace(id);
  if (fresh) it->second = std::make_unique<Object>(file, search);
  Object& o = *it->second;
  if (!o.mod) {
    objects_.erase(it);  // another process's path may open (this one's exited)
    return nullptr;
  }
  std::pair<std::string, int> fl;
  lookup_source_line(o.mod, o.low + k.offset, fl.first, fl.second);
  if (disk_) disk_->add(k.id0, k.id1, k.offset, fl.first, fl.second);
  return &lines_.emplace(k, std::move(fl)).first->second;
}

void FrameCache::keep_lines_in(std::unique_ptr<LineCache> disk) { disk_ = std::move(disk); }

const StackFrame* FrameCache::find(const Key& k) const {
  auto it = frames_.find(k);
  return it == frames_.end() ? nullptr : &it->second;
}

void FrameCache::insert(const Key& k, const StackFrame& f) {
  if (frames_.size() >= (1u << 18)) frames_.clear();  // bounded: ~256k call sites
  frames_.insert_or_assign(k, f);
}

size_t FrameCache::Hash::operator()(const Key& k) const {
  uint64_t h = k.id0 ^ (k.id1 * 0x9e3779b97f4a7c15ull) ^ (k.offset * 0xc2b2ae3d27d4eb4full);
  return static_cast<size_t>(h ^ (h >> 29));
}

Unwinder::Unwinder(uint32_t pid, std::vector<ModuleMapping> modules, std::string root, FrameCache* shared,
                   JitSymbols* jit, const SymbolSources* sources)
    : modules_(std::move(modules)), state_(std::make_unique<State>()) {
  state_->jit = jit;
  for (const auto& m : modules_) {
    const std::string_view base = std::string_view(m.path).substr(m.path.rfind('/') + 1);
    if (base.starts_with("jit-") && base.ends_with(".dump")) state_->jitdump = m.path;
  }
  state_->search.path = debuginfo_path(sources);
  state_->search.debuginfod = sources && sources->debuginfod;
  state_->debuginfo_path_c = state_->search.path.data();
  // The binaries are reported with their files (dwfl_report_elf): find_elf
  // is not called for them.
  state_->callbacks.find_elf = dwfl_build_id_find_elf;
  state_->callbacks.find_debuginfo = find_debuginfo;
  state_->callbacks.section_address = dwfl_offline_section_address;
  state_->callbacks.debuginfo_path = &state_->debuginfo_path_c;
  static const Dwfl_Thread_Callbacks callbacks = {
      .next_thread = &State::next_thread,
      .get_thread = &State::get_thread,
      .memory_read = &State::memory_read,
      .set_initial_registers = &State::set_initial_registers,
      .detach = nullptr,
      .thread_detach = nullptr,
  };
  state_->pid = pid;
  state_->shared = shared;
  state_->dwfl.reset(dwfl_begin(&state_->callbacks));
  if (!state_->dwfl) {
    error_ = std::string("dwfl_begin: ") + dwfl_errmsg(-1);
    return;
  }
  // One module per object: its load base is where its file offset 0 is
  // mapped (the lowest mapping's start minus its offset), as perf reports
  // them (util/unwind-libdw.c).
  std::map<std::string, uint64_t> bases;
  for (const auto& m : modules_) {
    uint64_t base = m.start - m.offset;
    auto [it, fresh] = bases.emplace(m.path, base);
    if (!fresh && base < it->second) it->second = base;
  }
  dwfl_report_begin(state_->dwfl.get());
  for (const auto& [path, base] : bases) {
    // Through the process's root while it lives; it may exit between our
    // look at /proc and the open (its root link then fails): the path as
    // we see it is the fallback. A file that is gone or not ELF is simply
    // not a module: its frames stay unsymbolized (and the unwind stops
    // there, without its CFI).
    Dwfl_Module* mod = nullptr;
    if (!root.empty()) mod = dwfl_report_elf(state_->dwfl.get(), path.c_str(), (root + path).c_str(), -1, base, false);
    if (!mod) mod = dwfl_report_elf(state_->dwfl.get(), path.c_str(), path.c_str(), -1, base, false);
    // Not on this machine: its debug file (--debug-dir) keeps the program
    // headers, symbols and lines at the same addresses (not its code).
    if (!mod)
      if (std::string debug = debug_file_for(sources, path); !debug.empty())
        mod = dwfl_report_elf(state_->dwfl.get(), path.c_str(), debug.c_str(), -1, base, false);
    if (mod) set_debuginfo_search(mod, &state_->search);
  }
  dwfl_report_end(state_->dwfl.get(), nullptr, nullptr);
  if (!dwfl_attach_state(state_->dwfl.get(), nullptr, static_cast<pid_t>(pid), &callbacks, state_.get()))
    error_ = std::string("dwfl_attach_state: ") + dwfl_errmsg(-1);
}

Unwinder::~Unwinder() = default;

void Unwinder::add_source_line(StackFrame& f) {
  if (!state_->dwfl || !f.file.empty() || f.pc == 0) return;
  const auto& [file, line] = state_->source_line_cached(f.activation ? f.pc : f.pc - 1);
  f.file = file;
  f.line = line;
}

std::vector<StackFrame> Unwinder::unwind(const StackSample& s, size_t max_frames, SourceLines lines) {
  if (!error_.empty() || max_frames == 0) return {};
  return symbolize(unwind_pcs(s, max_frames), s.ts, lines);
}

std::vector<uint64_t> Unwinder::unwind_pcs(const StackSample& s, size_t max_frames) {
  std::vector<uint64_t> pcs;
  if (!error_.empty() || max_frames == 0) return pcs;
  state_->sample = &s;
  state_->thread_given = false;
  state_->pcs = &pcs;
  state_->max_frames = max_frames;
  // Returns -1 when the unwind stops early (end of the copied stack, no
  // CFI): the frames found so far are the answer.
  dwfl_getthread_frames(state_->dwfl.get(), static_cast<pid_t>(s.tid), &State::on_frame, state_.get());
  if (pcs.empty()) pcs.push_back(s.regs[VMAT_UREG_IP] | VMAT_USTACK_PC_EXACT);
  state_->sample = nullptr;
  state_->pcs = nullptr;
  return pcs;
}

std::vector<StackFrame> Unwinder::symbolize(std::span<const uint64_t> pcs, uint64_t ts, SourceLines lines) {
  std::vector<StackFrame> frames;
  frames.reserve(pcs.size());
  for (uint64_t pc : pcs) {
    if (!(pc & ~VMAT_USTACK_PC_EXACT)) continue;
    // Symbols need only the modules (no thread state): without a Dwfl the
    // pc is still the frame.
    if (state_->dwfl) {
      frames.push_back(state_->symbolize_cached(pc));
    } else {
      frames.emplace_back();
      frames.back().pc = pc & ~VMAT_USTACK_PC_EXACT;
    }
    if (frames.back().module.empty()) state_->name_jit_frame(frames.back(), ts, pc & VMAT_USTACK_PC_EXACT);
    if (frames.back().module.empty()) name_by_mapping(frames.back(), pc & VMAT_USTACK_PC_EXACT);
  }
  if (lines == SourceLines::kAll)
    for (auto& f : frames) add_source_line(f);
  return frames;
}

void Unwinder::name_by_mapping(StackFrame& f, bool exact) const {
  // A file mapping libdw could not open (the binary is gone, or not on
  // this machine, and no debug file was found): module + offset from its
  // load base, never a blank.
  const uint64_t lookup = exact ? f.pc : f.pc - 1;
  for (const auto& m : modules_)
    if (lookup >= m.start && lookup < m.end) {
      f.module = m.path;
      f.offset = f.pc - (m.start - m.offset);
      return;
    }
}

}  // namespace vmatrace
