#include "core/proc_maps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "util/unique_fd.h"

namespace vmatrace {
namespace {

// Width show_vma_header_prefix() passes to seq_setwidth() on 64-bit.
constexpr size_t kMapsNameColumn = 25 + sizeof(uint64_t) * 6 - 1;

constexpr std::string_view kDeletedSuffix = " (deleted)";

std::runtime_error parse_error(const char* file, size_t line_no, std::string_view line, const std::string& what) {
  return std::runtime_error(std::string(file) + " line " + std::to_string(line_no) + ": " + what + ": \"" +
                            std::string(line) + "\"");
}

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_dec(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  return ec == std::errc() && p == s.data() + s.size();
}

// Next space-separated token from `s` starting at `pos`.
std::string_view next_token(std::string_view s, size_t& pos) {
  while (pos < s.size() && s[pos] == ' ') ++pos;
  size_t b = pos;
  while (pos < s.size() && s[pos] != ' ') ++pos;
  return s.substr(b, pos - b);
}

bool is_header_line(std::string_view line) {
  // "start-end " : hex digits, '-', hex digits.
  size_t i = 0;
  while (i < line.size() && std::isxdigit(static_cast<unsigned char>(line[i]))) ++i;
  return i > 0 && i < line.size() && line[i] == '-';
}

// Flags /proc/PID/maps cannot show, as they usually are (x86_64, 6.x).
uint64_t guess_flags(const Vma& v, std::string_view perms, std::string_view name) {
  uint64_t f = 0;
  if (perms[0] == 'r') f |= VM_READ;
  if (perms[1] == 'w') f |= VM_WRITE;
  if (perms[2] == 'x') f |= VM_EXEC;
  const bool shared = perms[3] == 's';
  if (name == "[vvar]" || name == "[vvar_vclock]")
    return f | VM_MAYREAD | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP;
  if (name == "[vdso]" || name == "[uprobes]") return f | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_DONTEXPAND;
  if (name == "[vsyscall]") return f;
  f |= VM_MAYREAD | VM_MAYEXEC;
  if (shared) {
    f |= VM_MAYSHARE;
    // A shared mapping without 'w' may still be VM_MAYWRITE (fd opened
    // read-write); maps cannot tell.
    if (f & VM_WRITE) f |= VM_SHARED | VM_MAYWRITE;
  } else {
    f |= VM_MAYWRITE;
    if (f & VM_WRITE) f |= VM_ACCOUNT;  // accountable_mapping(); wrong for MAP_NORESERVE
  }
  if (name == "[stack]") f |= VM_GROWSDOWN;
  (void)v;
  return f;
}

// Parse a maps header line into `v` and its printed name.
void parse_header(std::string_view line, Vma& v, std::string& name, const char* file, size_t line_no) {
  size_t pos = 0;
  std::string_view range = next_token(line, pos);
  std::string_view perms = next_token(line, pos);
  std::string_view off = next_token(line, pos);
  std::string_view dev = next_token(line, pos);
  std::string_view ino = next_token(line, pos);
  const size_t dash = range.find('-');
  const size_t colon = dev.find(':');
  uint64_t offset = 0, major = 0, minor = 0;
  if (dash == std::string_view::npos || !parse_hex(range.substr(0, dash), v.start) ||
      !parse_hex(range.substr(dash + 1), v.end) || v.start >= v.end) {
    throw parse_error(file, line_no, line, "bad address range");
  }
  if (perms.size() != 4 || (perms[3] != 'p' && perms[3] != 's')) throw parse_error(file, line_no, line, "bad perms");
  if (!parse_hex(off, offset)) throw parse_error(file, line_no, line, "bad offset");
  if (colon == std::string_view::npos || !parse_hex(dev.substr(0, colon), major) ||
      !parse_hex(dev.substr(colon + 1), minor) || major > 0xfff || minor > 0xfffff) {
    throw parse_error(file, line_no, line, "bad device");
  }
  if (!parse_dec(ino, v.ino)) throw parse_error(file, line_no, line, "bad inode");
  v.dev = kernel_mkdev(static_cast<uint32_t>(major), static_cast<uint32_t>(minor));
  // The name starts after the padding; a path may itself contain spaces.
  while (pos < line.size() && line[pos] == ' ') ++pos;
  name = std::string(line.substr(pos));

  const bool has_inode = v.ino != 0 || v.dev != 0;
  if (name.starts_with("[anon_shmem:") && name.ends_with("]")) {
    v.anon_name = name.substr(12, name.size() - 13);
  } else if (!name.empty() && (has_inode || name[0] == '/')) {
    std::string_view p = name;
    if (p.ends_with(kDeletedSuffix)) {
      v.deleted = true;
      p.remove_suffix(kDeletedSuffix.size());
    }
    v.path = unescape_maps_path(p);
  } else if (name == "[heap]" || name == "[stack]") {
    // derived from brk/start_stack when printing
  } else if (name.starts_with("[anon:") && name.ends_with("]")) {
    v.anon_name = name.substr(6, name.size() - 7);
  } else {
    v.special = name;
  }
  v.pgoff = v.is_file() ? offset >> kPageShift : v.start >> kPageShift;
  // maps cannot tell; assume a live anonymous VMA has pages (smaps refines).
  v.anon_vma = !v.is_file() && v.special.empty();
  v.flags = guess_flags(v, perms, name);
}

std::vector<Vma> parse_lines(std::string_view text, std::vector<std::string>* names, bool smaps) {
  const char* file = smaps ? "smaps" : "maps";
  std::vector<Vma> out;
  if (names) names->clear();
  size_t line_no = 0;
  size_t pos = 0;
  bool have_flags_for_last = true;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty()) continue;
    if (is_header_line(line)) {
      Vma v;
      std::string name;
      parse_header(line, v, name, file, line_no);
      out.push_back(std::move(v));
      if (names) names->push_back(std::move(name));
      have_flags_for_last = !smaps;
      continue;
    }
    if (!smaps) throw parse_error(file, line_no, line, "not a maps line");
    if (out.empty()) throw parse_error(file, line_no, line, "field before the first VMA");
    if (line.starts_with("Anonymous:")) {
      // Anonymous pages present imply an anon_vma.
      uint64_t kb = 0;
      size_t p2 = 10;
      parse_dec(next_token(line, p2), kb);
      out.back().anon_vma = kb != 0;
    } else if (line.starts_with("VmFlags:")) {
      out.back().flags = parse_smaps_vmflags(line.substr(8));
      have_flags_for_last = true;
    }
    // Size:, Rss:, ... are not part of the layout.
  }
  (void)have_flags_for_last;  // kernels without VmFlags keep the guessed flags
  return out;
}

}  // namespace

std::string escape_maps_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '\n') {
      out += "\\012";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_maps_path(std::string_view printed) {
  std::string out;
  out.reserve(printed.size());
  for (size_t i = 0; i < printed.size(); ++i) {
    if (printed.substr(i, 4) == "\\012") {
      out += '\n';
      i += 3;
    } else {
      out += printed[i];
    }
  }
  return out;
}

std::string format_maps_line(const Vma& v, std::string_view name) {
  char buf[160];
  const uint64_t offset = v.is_file() ? v.pgoff << kPageShift : 0;
  int n = std::snprintf(buf, sizeof buf, "%08llx-%08llx %s %08llx %02x:%02x %llu ",
                        static_cast<unsigned long long>(v.start), static_cast<unsigned long long>(v.end),
                        v.perms().c_str(), static_cast<unsigned long long>(offset), kernel_major(v.dev),
                        kernel_minor(v.dev), static_cast<unsigned long long>(v.ino));
  std::string line(buf, static_cast<size_t>(n));
  if (!name.empty()) {
    // seq_pad(m, ' '): pad to the column, then always one separator.
    if (line.size() < kMapsNameColumn) line.append(kMapsNameColumn - line.size(), ' ');
    line += ' ';
    line += name;
  }
  line += '\n';
  return line;
}

std::string maps_name(const Layout& l, const Vma& v) {
  if (v.is_file()) {
    if (!v.anon_name.empty()) return "[anon_shmem:" + v.anon_name + "]";
    std::string name = escape_maps_path(v.path);
    if (v.deleted) name += " (deleted)";
    return name;
  }
  if (!v.special.empty()) return v.special;
  if (l.is_initial_heap(v)) return "[heap]";
  if (l.is_initial_stack(v)) return "[stack]";
  if (!v.anon_name.empty()) return "[anon:" + v.anon_name + "]";
  return "";
}

std::string format_proc_maps(const Layout& l) {
  std::string out;
  out.reserve(l.size() * 100);
  l.for_each_vma([&](const Vma& v) { out += format_maps_line(v, maps_name(l, v)); });
  return out;
}

std::optional<Vma> parse_maps_line(std::string_view line, std::string* name) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (!is_header_line(line)) return std::nullopt;
  Vma v;
  std::string n;
  try {
    parse_header(line, v, n, "maps", 1);
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
  if (name) *name = std::move(n);
  return v;
}

std::vector<Vma> parse_proc_maps(std::string_view text, std::vector<std::string>* names) {
  return parse_lines(text, names, false);
}

std::vector<Vma> parse_proc_smaps(std::string_view text, std::vector<std::string>* names) {
  return parse_lines(text, names, true);
}

std::string read_text_file(const std::string& path) {
  // read(2) straight into the string, which doubles: an ostringstream
  // copied the text twice more (its buffer, then str()). The smaps of a
  // process with 145k VMAs is ~170 MB: those copies, and the page faults on
  // their fresh memory, were half of an attach's CPU (perf record -g).
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::string text(64 * 1024, '\0');
  size_t len = 0;
  for (;;) {
    if (len == text.size()) text.resize(text.size() * 2);
    const ssize_t n = ::read(fd.get(), text.data() + len, text.size() - len);
    if (n > 0) {
      len += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  }
  text.resize(len);
  return text;
}

ProcStat parse_proc_stat(std::string_view text) {
  // Field 2 (comm) is parenthesised and may contain spaces and ')'.
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) throw std::runtime_error("stat: no ')' after comm");
  std::vector<std::string_view> fields;  // fields[0] is field 3
  size_t pos = close + 1;
  while (true) {
    std::string_view t = next_token(text, pos);
    if (t.empty()) break;
    while (!t.empty() && t.back() == '\n') t.remove_suffix(1);
    if (!t.empty()) fields.push_back(t);
  }
  auto field = [&](size_t n) -> uint64_t {
    if (n < 3 || n - 3 >= fields.size()) return 0;  // older kernels print fewer fields
    uint64_t v = 0;
    if (!parse_dec(fields[n - 3], v)) throw std::runtime_error("stat: field " + std::to_string(n) + " is not a number");
    return v;
  };
  ProcStat st;
  st.start_stack = field(28);
  st.start_data = field(45);
  st.end_data = field(46);
  st.start_brk = field(47);
  return st;
}

ProcSnapshot read_proc_snapshot(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid) + "/";
  ProcSnapshot snap;
  try {
    try {
      snap.vmas = parse_proc_smaps(read_text_file(base + "smaps"), &snap.names);
      snap.from_smaps = true;
    } catch (const std::runtime_error&) {
      // smaps can be missing (CONFIG_PROC_PAGE_MONITOR=n); maps is always there.
      snap.vmas = parse_proc_maps(read_text_file(base + "maps"), &snap.names);
    }
    const ProcStat st = parse_proc_stat(read_text_file(base + "stat"));
    snap.start_brk = st.start_brk;
    snap.start_stack = st.start_stack;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("reading the layout of pid " + std::to_string(pid) + ": " + e.what());
  }
  // The current brk is not exported; the kernel named [heap] exactly the
  // VMAs with start < brk && end > start_brk, so their end is PAGE_ALIGN(brk).
  uint64_t heap_start = 0, heap_end = 0;
  uint64_t stack_vma_end = 0;
  for (size_t i = 0; i < snap.vmas.size(); ++i) {
    if (snap.names[i] == "[heap]") {
      if (heap_start == 0) heap_start = snap.vmas[i].start;
      heap_end = snap.vmas[i].end;
    } else if (snap.names[i] == "[stack]") {
      stack_vma_end = snap.vmas[i].end;
    }
  }
  if (snap.start_brk == 0) snap.start_brk = heap_start;  // stat fields hidden without ptrace access
  snap.brk = heap_end != 0 ? heap_end : snap.start_brk;
  if (snap.start_stack == 0 && stack_vma_end != 0) snap.start_stack = stack_vma_end - 1;
  return snap;
}

Layout layout_from_snapshot(const ProcSnapshot& snap) {
  Layout l;
  l.set_brk(snap.start_brk, snap.brk);
  l.set_start_stack(snap.start_stack);
  l.seed(snap.vmas);
  return l;
}

Layout read_proc_layout(pid_t pid) { return layout_from_snapshot(read_proc_snapshot(pid)); }

}  // namespace vmatrace
