#include "trace/rss_scanner.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <system_error>

#include "core/vm_flags.h"
#include "util/time.h"
#include "util/unique_fd.h"

namespace vmatrace {
namespace {

// The PAGEMAP_SCAN ioctl (include/uapi/linux/fs.h, Linux 6.7): Debian 12's
// headers predate it.
constexpr uint64_t kPageIsFile = 1u << 2, kPageIsPresent = 1u << 3, kPageIsSwapped = 1u << 4, kPageIsPfnZero = 1u << 5,
                   kPageIsHuge = 1u << 6;
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
// The top of the user address space: access_ok() refuses a range past it.
constexpr uint64_t kTaskSize = (uint64_t{1} << 47) - kPageSize;
// A fault maps up to fault_around_bytes (64 KiB) of a file, or a 2 MiB THP:
// the 2 MiB-aligned window around it is what may have changed.
constexpr uint64_t kFaultWindow = 2u << 20;
// A fault's record is written as the fault begins, before its page is in
// the page table: a scan that reads that range while the faulting thread
// is still in the handler (preempted on a loaded machine) misses the page,
// and its result replaces the fault's. A window whose last fault came this
// close before a scan began is scanned again at the next interval.
constexpr uint64_t kFaultInstallGraceNs = 50'000'000;
// Fault windows remembered between two scans (beyond this, a whole scan).
constexpr size_t kMaxFaulted = 4096;
constexpr uint64_t kMadvCold = 20, kMadvPageout = 21, kMadvPopulateRead = 22, kMadvPopulateWrite = 23,
                   kMadvHugepage = 14, kMadvCollapse = 25, kMadvWillneed = 3, kMadvFree = 8;
constexpr uint64_t kMapPopulate = 0x8000, kMapLocked = 0x2000;

uint64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t read_vm_rss(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), f))
    if (std::sscanf(line, "VmRSS: %lu kB", &kib) == 1) break;
  std::fclose(f);
  return kib * 1024;
}

uint64_t rss_flags(uint64_t categories) {
  uint64_t f = 0;
  if ((categories & kPageIsPresent) && !(categories & kPageIsPfnZero)) f |= VMAT_RSS_PRESENT;
  if (categories & kPageIsSwapped) f |= VMAT_RSS_SWAPPED;
  if (!f) return 0;
  if (categories & kPageIsFile) f |= VMAT_RSS_FILE;
  if (categories & kPageIsHuge) f |= VMAT_RSS_HUGE;
  return f;
}

// /proc/PID/pagemap's word (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = uint64_t{1} << 63, kPmSwapped = uint64_t{1} << 62, kPmFile = uint64_t{1} << 61,
                   kPmPfnMask = (uint64_t{1} << 55) - 1;
constexpr uint64_t kHugeZeroPages = (2u << 20) / kPageSize;

uint64_t pagemap_word(int fd, uint64_t addr) {
  uint64_t w = 0;
  if (::pread(fd, &w, sizeof(w), static_cast<off_t>(addr / kPageSize * sizeof(w))) != sizeof(w)) return 0;
  return w;
}

// The frames of the zero page and of the huge zero page, which a read
// fault on anonymous memory maps and smaps does not count as resident
// (vm_normal_page() is null for them). Found once, by reading fresh
// anonymous memory here and looking at our own pagemap. 0: not found.
struct ZeroPfns {
  uint64_t small = 0, huge = 0;
};
const ZeroPfns& zero_pfns() {
  static const ZeroPfns z = [] {
    ZeroPfns out;
    UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!fd) return out;
    void* p = ::mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      (void)*static_cast<volatile const char*>(p);
      const uint64_t w = pagemap_word(fd.get(), reinterpret_cast<uint64_t>(p));
      if (w & kPmPresent) out.small = w & kPmPfnMask;
      ::munmap(p, kPageSize);
    }
    // THP's read fault on a 2 MiB-aligned range maps the huge zero page
    // (transparent_hugepage/use_zero_page); with THP off it is the small one.
    constexpr size_t kHuge = 2u << 20;
    void* q = ::mmap(nullptr, 2 * kHuge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q != MAP_FAILED) {
      auto* a = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(q) + kHuge - 1) & ~(kHuge - 1));
      ::madvise(a, kHuge, MADV_HUGEPAGE);  // may fail (THP off): then it is the small zero page
      (void)*static_cast<volatile const char*>(a);
      const uint64_t w = pagemap_word(fd.get(), reinterpret_cast<uint64_t>(a));
      const uint64_t pfn = w & kPmPfnMask;
      if ((w & kPmPresent) && pfn && pfn != out.small) out.huge = pfn & ~(kHugeZeroPages - 1);
      ::munmap(q, 2 * kHuge);
    }
    return out;
  }();
  return z;
}

// The VMAs of /proc/PID/maps below the top of user space (not [vsyscall]).
std::vector<vmat_rss_range> maps_ranges(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
  if (!f) throw std::system_error(ESRCH, std::generic_category(), "/proc/" + std::to_string(pid) + "/maps");
  std::vector<vmat_rss_range> out;
  std::string line;
  while (std::getline(f, line)) {
    unsigned long long s = 0, e = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &s, &e) != 2 || s >= e || e > kTaskSize) continue;
    out.push_back({s, e});
  }
  return out;
}

// Sorted and disjoint, as the record requires.
std::vector<vmat_rss_range> normalise(std::vector<vmat_rss_range> v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  std::vector<vmat_rss_range> out;
  for (const auto& r : v) {
    if (r.start >= r.end) continue;
    if (!out.empty() && r.start <= out.back().end)
      out.back().end = std::max<uint64_t>(out.back().end, r.end);
    else
      out.push_back(r);
  }
  return out;
}

}  // namespace

const char* rss_scan_method_name(RssScanMethod m) {
  return m == RssScanMethod::kPagemapScan ? "pagemap_scan" : "pagemap";
}

void pagemap_words_to_runs(uint64_t start, std::span<const uint64_t> words, uint64_t zero_pfn, uint64_t huge_zero_pfn,
                           std::vector<vmat_rss_run>& runs) {
  for (size_t i = 0; i < words.size(); i++) {
    const uint64_t w = words[i];
    uint64_t f = 0;
    if (w & kPmPresent) {
      const uint64_t pfn = w & kPmPfnMask;
      const bool zero = (zero_pfn && pfn == zero_pfn) ||
                        (huge_zero_pfn && pfn >= huge_zero_pfn && pfn < huge_zero_pfn + kHugeZeroPages);
      if (!zero) f = VMAT_RSS_PRESENT;
    } else if (w & kPmSwapped) {
      f = VMAT_RSS_SWAPPED;
    }
    if (!f) continue;
    if (w & kPmFile) f |= VMAT_RSS_FILE;
    const uint64_t page = start + i * kPageSize;
    if (!runs.empty() && runs.back().end == page && runs.back().flags == f)
      runs.back().end = page + kPageSize;
    else
      runs.push_back({page, page + kPageSize, f});
  }
}

RssScanRecord pagemap_read(pid_t pid, const std::vector<vmat_rss_range>& ranges) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), path);
  const ZeroPfns& z = zero_pfns();
  RssScanRecord out;
  out.ranges = ranges;
  std::vector<uint64_t> words(4096);  // 16 MiB of address space per read
  for (const auto& r : ranges) {
    for (uint64_t at = r.start; at < r.end;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(words.size(), (r.end - at) / kPageSize));
      const ssize_t got =
          ::pread(fd.get(), words.data(), n * sizeof(uint64_t), static_cast<off_t>(at / kPageSize * sizeof(uint64_t)));
      if (got < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), path);
      }
      const size_t read = static_cast<size_t>(got) / sizeof(uint64_t);
      if (!read) break;  // past the end: never loop
      pagemap_words_to_runs(at, std::span<const uint64_t>(words.data(), read), z.small, z.huge, out.runs);
      at += read * kPageSize;
    }
  }
  return out;
}

std::string RssScanner::probe_pagemap_read() {
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd) return std::string("cannot open /proc/self/pagemap: ") + std::strerror(errno);
  if (!zero_pfns().small)
    return "/proc/self/pagemap shows no page frame numbers (they need CAP_SYS_ADMIN): the zero page cannot be told "
           "from resident memory";
  return "";
}

std::vector<vmat_rss_range> RssScanner::pagemap_ranges(uint32_t pid, Proc& p, bool want_full, bool& full) {
  const std::vector<vmat_rss_range> vmas = maps_ranges(pid);
  std::vector<vmat_rss_range> out;
  // The changed ranges, inside the VMAs (the words of a hole are zeros: no need to read them).
  for (auto [s, e] : p.dirty)
    for (const auto& v : vmas)
      if (v.start < e && s < v.end) out.push_back({std::max<uint64_t>(s, v.start), std::min<uint64_t>(e, v.end)});
  full = false;
  if (want_full) {
    uint64_t budget = opts_.full_page_budget, cursor = p.full_cursor;
    full = true;
    for (const auto& v : vmas) {
      if (v.end <= cursor) continue;
      const uint64_t s = std::max<uint64_t>(v.start, cursor);
      const uint64_t pages = (v.end - s) / kPageSize;
      if (pages > budget) {
        if (budget) out.push_back({s, s + budget * kPageSize});
        p.full_cursor = s + budget * kPageSize;
        full = false;
        break;
      }
      out.push_back({s, v.end});
      budget -= pages;
    }
    if (full) p.full_cursor = 0;
  }
  return normalise(std::move(out));
}

RssScanRecord pagemap_scan(pid_t pid, const std::vector<vmat_rss_range>& ranges) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), path);
  RssScanRecord out;
  out.ranges = ranges;
  std::vector<PageRegion> vec(1024);
  for (const auto& r : ranges) {
    uint64_t start = r.start;
    while (start < r.end) {
      PmScanArg a{};
      a.size = sizeof(a);
      a.start = start;
      a.end = r.end;
      a.vec = reinterpret_cast<uint64_t>(vec.data());
      a.vec_len = vec.size();
      a.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
      a.return_mask = kPageIsPresent | kPageIsSwapped | kPageIsFile | kPageIsPfnZero | kPageIsHuge;
      int n = ::ioctl(fd.get(), kPagemapScan, &a);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), std::string("PAGEMAP_SCAN ") + path);
      }
      for (int i = 0; i < n; i++) {
        uint64_t f = rss_flags(vec[i].categories);
        if (!f) continue;
        auto& runs = out.runs;
        if (!runs.empty() && runs.back().end == vec[i].start && runs.back().flags == f)
          runs.back().end = vec[i].end;
        else
          runs.push_back({vec[i].start, vec[i].end, f});
      }
      if (a.walk_end <= start) break;  // no progress: never loop
      start = a.walk_end;
    }
  }
  return out;
}

std::string RssScanner::probe() {
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd) return std::string("cannot open /proc/self/pagemap: ") + std::strerror(errno);
  static char probe_page[kPageSize * 2];
  PageRegion r{};
  PmScanArg a{};
  a.size = sizeof(a);
  a.start = reinterpret_cast<uint64_t>(probe_page) & ~(kPageSize - 1);
  a.end = a.start + kPageSize;
  a.vec = reinterpret_cast<uint64_t>(&r);
  a.vec_len = 1;
  a.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
  a.return_mask = kPageIsPresent;
  if (::ioctl(fd.get(), kPagemapScan, &a) < 0)
    return std::string("the PAGEMAP_SCAN ioctl failed (") + std::strerror(errno) + "; it needs Linux 6.7)";
  return "";
}

void RssScanner::mark(Proc& p, uint64_t start, uint64_t end) {
  start &= ~(kPageSize - 1);
  end = std::min(kTaskSize, (end + kPageSize - 1) & ~(kPageSize - 1));
  // A pending whole scan covers it, unless it is read in parts (it may be past this range already).
  if (start >= end || (p.full && opts_.method == RssScanMethod::kPagemapScan)) return;
  // Join every range that touches [start, end).
  auto it = p.dirty.upper_bound(start);
  if (it != p.dirty.begin() && std::prev(it)->second >= start) --it;
  while (it != p.dirty.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = p.dirty.erase(it);
  }
  p.dirty.emplace(start, end);
}

RssScanner::Proc* RssScanner::find(uint32_t pid) { return last_.find(procs_, pid); }

void RssScanner::forget(uint32_t pid) {
  last_.forget(pid);
  procs_.erase(pid);
}

void RssScanner::note(const DecodedRecord& d) {
  switch (d.type) {
    case VMAT_EV_FAULT: {
      Proc* pp = find(d.hdr.pid);
      if (!pp) return;
      Proc& p = *pp;
      const uint64_t w = d.fault.addr & ~(kFaultWindow - 1);
      if (w == p.last_window) {  // most faults land next to the previous one
        if (!p.faulted.empty()) p.faulted.back().second = d.hdr.ts;
        return;
      }
      p.last_window = w;
      mark(p, w, w + kFaultWindow);
      if (p.faulted.size() < kMaxFaulted)
        p.faulted.emplace_back(w, d.hdr.ts);
      else
        p.faulted_overflow = true;
      return;
    }
    case VMAT_EV_SYSCALL: {
      Proc* pp = find(d.hdr.pid);
      if (!pp || (d.sys.ret < 0 && d.sys.ret > -4096)) return;
      Proc& p = *pp;
      const auto& s = d.sys;
      switch (s.sys) {
        case VMAT_SYS_MMAP:
          // Populated without faults: MAP_POPULATE, MAP_LOCKED, or VM_LOCKED
          // from mlockall(MCL_FUTURE) (the kernel's VMA in the record).
          if ((s.args[3] & (kMapPopulate | kMapLocked)) || (s.vma[0].flags & VM_LOCKED))
            mark(p, static_cast<uint64_t>(s.ret), static_cast<uint64_t>(s.ret) + s.args[1]);
          break;
        case VMAT_SYS_BRK:
          if (s.vma[0].flags & VM_LOCKED) mark(p, s.vma[0].start, s.vma[0].end);  // a locked heap grows populated
          break;
        case VMAT_SYS_MADVISE: {
          const uint64_t a = s.args[2];
          if (a == kMadvCold || a == kMadvPageout || a == kMadvPopulateRead || a == kMadvPopulateWrite ||
              a == kMadvHugepage || a == kMadvCollapse || a == kMadvWillneed || a == kMadvFree)
            mark(p, s.args[0], s.args[0] + s.args[1]);
          break;
        }
        case VMAT_SYS_MLOCK:
        case VMAT_SYS_MLOCK2:
          mark(p, s.args[0], s.args[0] + s.args[1]);
          break;
        case VMAT_SYS_MREMAP:
          mark(p, static_cast<uint64_t>(s.ret), static_cast<uint64_t>(s.ret) + s.args[2]);
          break;
        case VMAT_SYS_MLOCKALL:
        case VMAT_SYS_SHMAT:
          p.full = true;
          p.full_cursor = 0;
          p.dirty.clear();
          break;
        default:
          break;
      }
      p.last_window = ~uint64_t{0};
      return;
    }
    case VMAT_EV_FORK:
      if (d.fork.flags & (VMAT_FORK_THREAD | VMAT_FORK_SHARED_VM)) return;
      procs_[d.fork.child_pid] = Proc{};
      return;
    case VMAT_EV_EXEC:
    case VMAT_REC_LAYOUT:
    case VMAT_REC_LOSS:
      procs_[d.hdr.pid] = Proc{};  // a new mm, a seed, or lost events: scan it all
      return;
    case VMAT_EV_EXIT:
      if (d.exit.flags & VMAT_EXIT_GROUP) forget(d.hdr.pid);
      return;
    default:
      return;
  }
}

bool RssScanner::pending(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it != procs_.end() && (it->second.full || !it->second.dirty.empty());
}

bool RssScanner::due(const Proc& p, uint64_t now) const {
  if (now - p.last_scan < opts_.interval_ns) return false;
  return p.full || !p.dirty.empty() || now - p.last_full >= opts_.interval_ns * opts_.full_every;
}

bool RssScanner::due(uint64_t now) const {
  for (const auto& [pid, p] : procs_)
    if (due(p, now)) return true;
  return false;
}

std::vector<std::vector<std::byte>> RssScanner::scan(uint64_t now,
                                                     const std::vector<std::pair<uint32_t, std::string>>& pids) {
  std::vector<std::vector<std::byte>> out;
  for (const auto& [pid, comm] : pids) {
    auto it = procs_.find(pid);
    if (it == procs_.end() || !due(it->second, now)) continue;
    Proc& p = it->second;
    const bool want_full = p.full || now - p.last_full >= opts_.interval_ns * opts_.full_every;
    bool full = want_full;
    const uint64_t cpu0 = thread_cpu_ns();
    const uint64_t read_start = monotonic_ns();
    RssScanRecord rec;
    try {
      std::vector<vmat_rss_range> ranges;
      if (opts_.method == RssScanMethod::kPagemapRead) {
        ranges = pagemap_ranges(pid, p, want_full, full);
      } else if (full) {
        ranges.push_back({kPageSize, kTaskSize});
      } else {
        for (auto [s, e] : p.dirty) ranges.push_back({s, e});
      }
      rec = opts_.method == RssScanMethod::kPagemapRead ? pagemap_read(static_cast<pid_t>(pid), ranges)
                                                        : pagemap_scan(static_cast<pid_t>(pid), ranges);
    } catch (const std::system_error&) {
      forget(pid);  // gone (its exit record follows), or the kernel refuses: no more scans of it
      continue;
    }
    rec.kernel_rss = read_vm_rss(static_cast<pid_t>(pid));
    rec.flags =
        (full ? VMAT_RSS_SCAN_FULL : 0) | (opts_.method == RssScanMethod::kPagemapRead ? VMAT_RSS_SCAN_PAGEMAP : 0);
    rec.scan_ns = thread_cpu_ns() - cpu0;
    cpu_ns_ += rec.scan_ns;
    scans_++;
    p.dirty.clear();
    p.full = want_full && !full;  // a whole scan read in parts goes on at the next interval
    p.last_scan = now;
    if (full) p.last_full = now;
    p.last_window = ~uint64_t{0};
    if (p.faulted_overflow) {
      p.full = true;  // too many windows to tell which were recent
      p.full_cursor = 0;
    } else {
      for (const auto& [w, ts] : p.faulted)
        if (ts + kFaultInstallGraceNs >= read_start) mark(p, w, w + kFaultWindow);
    }
    p.faulted.clear();
    p.faulted_overflow = false;
    out.push_back(encode_rss_scan(make_header(VMAT_REC_RSS, now, pid, pid, comm), rec));
  }
  return out;
}

}  // namespace vmatrace
