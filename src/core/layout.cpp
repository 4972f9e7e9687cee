#include "core/layout.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <stdexcept>
#include <string_view>

#include "util/text.h"

namespace vmatrace {
namespace {

constexpr uint64_t kPageMask = kPageSize - 1;

// Above every user address (x86-64 with 5-level paging ends at 2^56): only
// the gate VMA ([vsyscall]), which is not in the mm's tree, lives there.
constexpr uint64_t kTaskSizeMax = 1ULL << 56;

bool page_aligned(uint64_t x) { return (x & kPageMask) == 0; }

// PAGE_ALIGN(); false when rounding up wraps (the kernel rejects such lengths).
bool page_align_up(uint64_t x, uint64_t& out) {
  if (x > UINT64_MAX - kPageMask) return false;
  out = (x + kPageMask) & ~kPageMask;
  return true;
}

void check_vma_shape(const Vma& v, const char* what) {
  if (v.start >= v.end || !page_aligned(v.start) || !page_aligned(v.end)) {
    throw std::invalid_argument(std::string(what) + ": bad VMA range [" + hex(v.start) + ", " + hex(v.end) + ")");
  }
}

// vm_start_gap(): a VM_GROWSDOWN VMA keeps stack_guard_gap free below it,
// an x86 shadow stack one page.
uint64_t vm_start_gap(const Vma& v) {
  uint64_t gap = 0;
  if (v.flags & VM_GROWSDOWN) {
    gap = Layout::kStackGuardGap;
  } else if (v.flags & VM_SHADOW_STACK) {
    gap = kPageSize;
  }
  return v.start >= gap ? v.start - gap : 0;
}

}  // namespace

// ---- Vma ----------------------------------------------------------------------

bool Vma::is_sysv_shm() const {
  // ipc/shm.c newseg(): sprintf(name, "SYSV%08x", key) on the internal
  // shm mount; alloc_file_pseudo() leaves it unhashed, so "(deleted)".
  constexpr std::string_view kPrefix = "/SYSV";
  return deleted && path.size() == kPrefix.size() + 8 && path.starts_with(kPrefix) &&
         path.find_first_not_of("0123456789abcdef", kPrefix.size()) == std::string::npos;
}

bool Vma::same_file(const Vma& o) const {
  if (is_file() != o.is_file()) return false;
  if (!is_file()) return true;
  if (file_key != 0 && o.file_key != 0) return file_key == o.file_key;
  return dev == o.dev && ino == o.ino && path == o.path;
}

bool Vma::same_attributes(const Vma& o) const {
  return start == o.start && end == o.end && flags == o.flags && pgoff == o.pgoff && dev == o.dev && ino == o.ino &&
         path == o.path && deleted == o.deleted && special == o.special && anon_name == o.anon_name;
}

bool vmas_mergeable(const Vma& prev, const Vma& next) {
  // is_mergeable_vma(): flags must match except VM_IGNORE_MERGE, same
  // vm_file, same anon name (and, unmodelled, same mempolicy and uffd ctx).
  if ((prev.flags ^ next.flags) & ~VM_IGNORE_MERGE) return false;
  // vma_merge_new_range()/vma_merge_existing_range(): VM_SPECIAL never merges.
  if ((prev.flags | next.flags) & VM_SPECIAL) return false;
  // Kernel-named special mappings have vm_ops (and usually VM_DONTEXPAND):
  // _install_special_mapping() VMAs are never merged.
  if (!prev.special.empty() || !next.special.empty()) return false;
  if (!prev.same_file(next)) return false;
  if (prev.anon_name != next.anon_name) return false;
  // A shared anonymous mapping is backed by its own shmem file
  // (shmem_zero_setup()), so two of them never share vm_file.
  if (!prev.is_file() && (prev.flags & VM_MAYSHARE)) return false;
  // can_vma_merge_after()/can_vma_merge_before(): contiguous pgoff.
  // Unmodelled: is_mergeable_anon_vma() (see the header comment).
  return prev.pgoff + prev.pages() == next.pgoff;
}

// ---- Layout: state --------------------------------------------------------------

void Layout::bump_file_generation() {
  static std::atomic<uint64_t> last{0};
  file_gen_ = last.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Layout::set_brk(uint64_t start_brk, uint64_t brk) {
  start_brk_ = start_brk;
  brk_ = brk;
}

void Layout::set_start_stack(uint64_t start_stack) { start_stack_ = start_stack; }

void Layout::clear() {
  vmas_.clear();
  bump_file_generation();
}

void Layout::seed(std::vector<Vma> vmas) {
  std::sort(vmas.begin(), vmas.end(), [](const Vma& a, const Vma& b) { return a.start < b.start; });
  Map fresh;  // built whole before it replaces the old one (seed() may throw)
  uint64_t prev_end = 0;
  for (auto& v : vmas) {
    check_vma_shape(v, "Layout::seed");
    if (v.start < prev_end) {
      throw std::invalid_argument("Layout::seed: VMA at " + hex(v.start) + " overlaps the previous one ending at " +
                                  hex(prev_end));
    }
    prev_end = v.end;
    v.id = new_id();
    auto key = v.start;
    fresh.push_back(key, std::move(v));
  }
  fresh.shrink_to_fit();
  vmas_ = std::move(fresh);
  bump_file_generation();
}

void Layout::restore(std::vector<Vma> vmas, uint64_t next_id) {
  Map fresh;
  uint64_t prev_end = 0;
  for (auto& v : vmas) {
    check_vma_shape(v, "Layout::restore");
    if (v.start < prev_end)
      throw std::invalid_argument("Layout::restore: VMA at " + hex(v.start) +
                                  " overlaps or precedes the one ending at " + hex(prev_end));
    if (v.id == 0 || v.id >= next_id) throw std::invalid_argument("Layout::restore: VMA id out of range");
    prev_end = v.end;
    auto key = v.start;
    fresh.push_back(key, std::move(v));
  }
  fresh.shrink_to_fit();
  vmas_ = std::move(fresh);
  next_id_ = next_id;
  bump_file_generation();
}

void Layout::fork_from(const Layout& parent) {
  // dup_mmap(): VM_DONTCOPY VMAs are skipped, mlock and (without
  // UFFD_FEATURE_EVENT_FORK) userfaultfd registration are not inherited.
  // VM_WIPEONFORK VMAs are copied with their flags (only the pages go).
  vmas_.clear();
  for (const auto& [start, v] : parent.vmas_) {
    if (v.flags & VM_DONTCOPY) continue;
    Vma c = v;
    c.flags &= ~(VM_LOCKED_MASK | VM_UFFD_FLAGS);
    vmas_.push_back(start, std::move(c));
  }
  vmas_.shrink_to_fit();
  start_brk_ = parent.start_brk_;
  brk_ = parent.brk_;
  start_stack_ = parent.start_stack_;
  next_id_ = parent.next_id_;
  soft_dirty_ = parent.soft_dirty_;
  stack_rlimit_ = parent.stack_rlimit_;
  def_flags_ = parent.def_flags_ & VM_INIT_DEF_MASK;  // mm_init(): MCL_FUTURE is not inherited
  shm_attaches_ = parent.shm_attaches_;
  bump_file_generation();
}

// ---- Layout: queries --------------------------------------------------------------

Layout::Map::iterator Layout::floor(uint64_t addr) const {
  // Iterators for the non-const callers; nothing is changed here.
  return const_cast<Map&>(vmas_).floor(addr, hint_);
}

Layout::Map::iterator Layout::first_at_or_after(uint64_t addr) const {
  auto f = floor(addr);
  if (f == vmas_.end()) return const_cast<Map&>(vmas_).begin();
  return f->first == addr ? f : std::next(f);
}

Layout::Map::iterator Layout::containing(uint64_t addr) {
  auto it = floor(addr);
  return it != vmas_.end() && it->second.end > addr ? it : vmas_.end();
}

const Vma* Layout::find(uint64_t addr) const {
  auto it = floor(addr);
  return it != vmas_.end() && it->second.end > addr ? &it->second : nullptr;
}

const Vma* Layout::find_next(uint64_t addr) const {
  auto f = floor(addr);
  if (f != vmas_.end() && f->second.end > addr) return &f->second;
  auto it = f == vmas_.end() ? vmas_.begin() : std::next(f);
  return it == vmas_.end() ? nullptr : &it->second;
}

const Vma* Layout::find_by_id(uint64_t id) const {
  for (const auto& [start, v] : vmas_) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

bool Layout::restore_id(uint64_t start, uint64_t end, uint64_t id) {
  auto it = vmas_.find(start);
  if (it == vmas_.end() || it->second.end != end || id == 0) return false;
  if (it->second.id == id) return true;
  for (auto& [s, v] : vmas_)
    if (v.id == id) v.id = new_id();
  it->second.id = id;
  return true;
}

std::vector<Vma> Layout::overlapping(uint64_t start, uint64_t end) const {
  std::vector<Vma> out;
  append_overlapping(start, end, out);
  return out;
}

void Layout::append_overlapping(uint64_t start, uint64_t end, std::vector<Vma>& out) const {
  if (start >= end) return;
  auto f = floor(start);
  auto it = f != vmas_.end() && f->second.end > start ? f : f == vmas_.end() ? vmas_.begin() : std::next(f);
  for (; it != vmas_.end() && it->second.start < end; ++it) out.push_back(it->second);
}

std::vector<Vma> Layout::vmas() const {
  std::vector<Vma> out;
  out.reserve(vmas_.size());
  for (const auto& [start, v] : vmas_) out.push_back(v);
  return out;
}

bool Layout::is_initial_heap(const Vma& v) const {
  // vma_is_initial_heap() (6.18; 6.1 used <= / >= here).
  return v.start < brk_ && v.end > start_brk_;
}

bool Layout::is_initial_stack(const Vma& v) const {
  // vma_is_initial_stack()
  return start_stack_ != 0 && v.start <= start_stack_ && v.end >= start_stack_;
}

bool Layout::any_sealed(uint64_t start, uint64_t end) const {
  if (start >= end) return false;
  auto f = floor(start);
  auto it = f != vmas_.end() && f->second.end > start ? f : f == vmas_.end() ? vmas_.begin() : std::next(f);
  for (; it != vmas_.end() && it->second.start < end; ++it)
    if (it->second.flags & VM_SEALED) return true;
  return false;
}

void Layout::collect_result(uint64_t start, uint64_t end, LayoutChange& ch) const {
  if (collect_results_) ch.result = overlapping(start, end);
}

// ---- Layout: primitives --------------------------------------------------------------

Layout::Map::iterator Layout::insert(Vma v) {
  const uint64_t key = v.start;
  touch(v);
  auto [it, ok] = vmas_.emplace(key, std::move(v), hint_);
  if (!ok) throw std::logic_error("Layout: two VMAs start at " + hex(key));
  return it;
}

Layout::Map::iterator Layout::split_at(uint64_t addr, LayoutChange& ch) {
  auto it = containing(addr);
  if (it == vmas_.end()) return first_at_or_after(addr);
  if (it->second.start == addr) return it;
  touch(it->second);
  // __split_vma(): the new piece's pgoff advances by the pages below addr,
  // for anonymous VMAs too.
  Vma upper = it->second;
  upper.start = addr;
  upper.pgoff += (addr - it->second.start) >> kPageShift;
  upper.id = new_id();
  it->second.end = addr;
  ++ch.splits;
  return insert(std::move(upper));
}

void Layout::remove_range(uint64_t start, uint64_t end, LayoutChange& ch) {
  if (start >= end) return;
  split_at(start, ch);
  split_at(end, ch);
  auto it = first_at_or_after(start);
  while (it != vmas_.end() && it->second.start < end) {
    note_removed(ch, it->second);
    it = erase(it);
  }
}

Layout::Map::iterator Layout::place_new(Vma v, LayoutChange& ch, MergeMode mode, bool soft_dirty_new) {
  auto next_it = first_at_or_after(v.start);
  auto prev_it = next_it == vmas_.begin() ? vmas_.end() : std::prev(next_it);
  if (prev_it != vmas_.end() && prev_it->second.end > v.start) {
    throw std::logic_error("Layout::place_new: range at " + hex(v.start) + " still occupied");
  }
  if (next_it != vmas_.end() && next_it->second.start < v.end) {
    throw std::logic_error("Layout::place_new: range ending " + hex(v.end) + " still occupied");
  }
  const bool mergeable = mode != MergeMode::kNone && !(v.flags & VM_SPECIAL) && v.special.empty();
  const bool merge_left =
      mergeable && prev_it != vmas_.end() && prev_it->second.end == v.start && vmas_mergeable(prev_it->second, v);
  const bool merge_right = mergeable && mode == MergeMode::kBoth && next_it != vmas_.end() &&
                           next_it->second.start == v.end && vmas_mergeable(v, next_it->second);
  const uint64_t sd = soft_dirty_new ? (v.flags & VM_SOFTDIRTY) : 0;
  touch(v);  // a file's new range: new module mapping whether it merges or not

  if (merge_left && merge_right) {
    // vma_merge_new_range(): prev expands over the new range and next;
    // next is deleted.
    prev_it->second.end = next_it->second.end;
    prev_it->second.flags |= sd;
    prev_it->second.anon_vma |= v.anon_vma || next_it->second.anon_vma;
    note_removed(ch, next_it->second);
    erase(next_it);
    ch.merges += 2;
    return prev_it;
  }
  if (merge_left) {
    prev_it->second.end = v.end;
    prev_it->second.flags |= sd;
    prev_it->second.anon_vma |= v.anon_vma;
    ch.merges += 1;
    return prev_it;
  }
  if (merge_right) {
    // next expands downwards and takes the new range's pgoff.
    Vma n = next_it->second;
    n.start = v.start;
    n.pgoff = v.pgoff;
    n.flags |= sd;
    n.anon_vma |= v.anon_vma;
    erase(next_it);
    ch.merges += 1;
    return insert(std::move(n));
  }
  v.id = new_id();
  return insert(std::move(v));
}

Layout::Map::iterator Layout::modify_flags(Map::iterator it, uint64_t start, uint64_t end, uint64_t new_flags,
                                           LayoutChange& ch) {
  Vma& mid = it->second;
  touch(mid);
  const bool left_side = start == mid.start;
  const bool right_side = end == mid.end;
  // vma_merge_existing_range(): no merge for VM_SPECIAL or when the range
  // touches neither edge of the VMA.
  const bool try_merge = !(new_flags & VM_SPECIAL) && mid.special.empty() && (left_side || right_side);

  Vma cand = mid;
  cand.start = start;
  cand.end = end;
  cand.flags = new_flags;
  cand.pgoff = mid.pgoff + ((start - mid.start) >> kPageShift);

  auto prev_it = it == vmas_.begin() ? vmas_.end() : std::prev(it);
  auto next_it = std::next(it);
  const bool merge_left = try_merge && left_side && prev_it != vmas_.end() && prev_it->second.end == start &&
                          vmas_mergeable(prev_it->second, cand);
  // can_vma_merge_right() would also require prev and next anon_vmas to be
  // compatible when merging both; unmodelled.
  const bool merge_right = try_merge && right_side && next_it != vmas_.end() && next_it->second.start == end &&
                           vmas_mergeable(cand, next_it->second);

  if (merge_left && merge_right) {
    // prev extends over middle and next; both are deleted.
    prev_it->second.end = next_it->second.end;
    prev_it->second.flags = new_flags;
    prev_it->second.anon_vma |= mid.anon_vma || next_it->second.anon_vma;
    note_removed(ch, mid);
    note_removed(ch, next_it->second);
    erase(next_it);
    erase(it);
    ch.merges += 2;
    return prev_it;
  }
  if (merge_left) {
    // prev extends to end; middle is deleted or shrinks from the left
    // (__adjust_middle_start) and keeps its identity.
    prev_it->second.end = end;
    prev_it->second.flags = new_flags;
    prev_it->second.anon_vma |= mid.anon_vma;
    if (right_side) {
      note_removed(ch, mid);
      erase(it);
    } else {
      Vma m = mid;
      m.start = end;
      m.pgoff += (end - start) >> kPageShift;
      erase(it);
      ch.merges += 1;
      return std::prev(insert(std::move(m)));  // prev_it: the insert moved it
    }
    ch.merges += 1;
    return prev_it;
  }
  if (merge_right) {
    // next extends downwards (__adjust_next_start); middle is deleted or
    // shrinks from the right.
    Vma n = next_it->second;
    n.start = start;
    n.pgoff = cand.pgoff;
    n.flags = new_flags;
    n.anon_vma |= mid.anon_vma;
    erase(next_it);
    if (left_side) {
      note_removed(ch, mid);
      erase(it);
    } else {
      mid.end = start;
    }
    ch.merges += 1;
    return insert(std::move(n));
  }
  // vma_modify(): no merge, split off the parts outside [start, end).
  if (mid.start < start) it = split_at(start, ch);
  if (it->second.end > end) {
    split_at(end, ch);
    it = containing(start);  // the insert moved it
  }
  it->second.flags = new_flags;
  return it;
}

// ---- Layout: operations --------------------------------------------------------------

LayoutChange Layout::mmap(const Vma& v) {
  check_vma_shape(v, "Layout::mmap");
  LayoutChange ch;
  Vma n = v;
  n.id = 0;
  n.anon_vma = false;  // a new mapping has no pages yet
  if (n.is_anonymous()) {
    // do_mmap(): private anonymous memory gets pgoff = addr >> PAGE_SHIFT,
    // shared anonymous memory offset 0 of its own shmem file.
    n.pgoff = (n.flags & VM_MAYSHARE) ? 0 : n.start >> kPageShift;
  }
  // __mmap_region(): whatever the new range overlaps is unmapped first
  // (MAP_FIXED), then the new range merges with prev/next when allowed.
  remove_range(n.start, n.end, ch);
  place_new(std::move(n), ch, MergeMode::kBoth, /*soft_dirty_new=*/true);
  collect_result(v.start, v.end, ch);
  return ch;
}

LayoutChange Layout::munmap(uint64_t start, uint64_t len) {
  // do_vmi_munmap(): start must be page aligned, len is PAGE_ALIGN()ed.
  LayoutChange ch;
  uint64_t alen = 0;
  if (!page_aligned(start) || len == 0 || !page_align_up(len, alen) || start + alen < start) return ch;
  const uint64_t end = start + alen;
  // mseal: the whole call fails (EPERM) before anything is unmapped.
  if (any_sealed(start, end)) return ch;
  remove_range(start, end, ch);
  return ch;
}

LayoutChange Layout::mprotect(uint64_t start, uint64_t len, uint64_t prot, int pkey) {
  LayoutChange ch;
  if (!page_aligned(start) || len == 0) return ch;
  uint64_t alen = 0;
  if (!page_align_up(len, alen) || start + alen <= start) return ch;
  uint64_t end = start + alen;
  const uint64_t grows = prot & (abi::kProtGrowsDown | abi::kProtGrowsUp);
  prot &= ~grows;
  if (grows & abi::kProtGrowsUp) return ch;  // x86 has no VM_GROWSUP: EINVAL
  // do_mprotect_pkey(): the first VMA must contain start (or, with
  // PROT_GROWSDOWN, be a VM_GROWSDOWN VMA below end; start then drops to it).
  auto first = vmas_.upper_bound(start);
  if (first != vmas_.begin() && std::prev(first)->second.end > start) --first;
  if (first == vmas_.end()) return ch;
  if (grows & abi::kProtGrowsDown) {
    if (first->second.start >= end || !(first->second.flags & VM_GROWSDOWN)) return ch;
    start = first->second.start;
  } else if (first->second.start > start) {
    return ch;
  }
  uint64_t cursor = start;
  while (cursor < end) {
    auto it = containing(cursor);
    if (it == vmas_.end()) break;  // hole: ENOMEM, earlier VMAs stay changed
    const Vma& v = it->second;
    if (v.flags & VM_SEALED) break;  // EPERM from this VMA on
    uint64_t new_flags = (v.flags & ~VM_ACCESS_FLAGS) | vm_flags_from_prot(prot);
    // do_mprotect_pkey(): calc_vm_prot_bits(prot, pkey) replaces the key.
    if (pkey >= 0) new_flags = (new_flags & ~VM_PKEY_MASK) | ((static_cast<uint64_t>(pkey) << 32) & VM_PKEY_MASK);
    // Asking for more than VM_MAY* allows: EACCES.
    if ((new_flags & ~(new_flags >> 4)) & VM_ACCESS_FLAGS) break;
    const uint64_t piece_end = std::min(end, v.end);
    if (new_flags == v.flags) {  // mprotect_fixup(): nothing to do, no merge attempt
      cursor = piece_end;
      continue;
    }
    // mprotect_fixup() accounting: private memory turning writable is
    // charged; 6.7+ uncharges an anonymous VMA turning read-only while it
    // has no anon_vma (the model's anon_vma hint; 6.1 never uncharges).
    if (new_flags & VM_WRITE) {
      if (!(v.flags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))) new_flags |= VM_ACCOUNT;
    } else if ((v.flags & VM_ACCOUNT) && v.is_anonymous() && !v.anon_vma) {
      new_flags &= ~VM_ACCOUNT;
    }
    modify_flags(it, cursor, piece_end, new_flags, ch);
    cursor = piece_end;
  }
  collect_result(start, end, ch);
  return ch;
}

LayoutChange Layout::madvise(uint64_t start, uint64_t len, int advice) {
  using namespace abi;
  LayoutChange ch;
  switch (advice) {
    case kMadvNormal:
    case kMadvRandom:
    case kMadvSequential:
    case kMadvDontFork:
    case kMadvDoFork:
    case kMadvMergeable:
    case kMadvUnmergeable:
    case kMadvHugePage:
    case kMadvNoHugePage:
    case kMadvDontDump:
    case kMadvDoDump:
    case kMadvWipeOnFork:
    case kMadvKeepOnFork:
      break;
    default:
      return ch;  // no vm_flags change (DONTNEED, FREE, WILLNEED, COLD, ...)
  }
  uint64_t alen = 0;
  if (!page_aligned(start) || !page_align_up(len, alen) || start + alen < start) return ch;
  const uint64_t end = start + alen;
  if (end == start) return ch;

  // madvise_walk_vmas(): visit each VMA piece, skipping holes (which only
  // turn the return value into ENOMEM); an error from one VMA stops the walk.
  uint64_t cursor = start;
  while (cursor < end) {
    auto it = containing(cursor);
    if (it == vmas_.end()) {
      it = vmas_.lower_bound(cursor);
      if (it == vmas_.end() || it->second.start >= end) break;
      cursor = it->second.start;
    }
    const Vma& v = it->second;
    const uint64_t piece_end = std::min(end, v.end);
    uint64_t nf = v.flags;
    bool error = false;
    // madvise_vma_behavior()
    switch (advice) {
      case kMadvNormal:
        nf &= ~(VM_RAND_READ | VM_SEQ_READ);
        break;
      case kMadvSequential:
        nf = (nf & ~VM_RAND_READ) | VM_SEQ_READ;
        break;
      case kMadvRandom:
        nf = (nf & ~VM_SEQ_READ) | VM_RAND_READ;
        break;
      case kMadvDontFork:
        nf |= VM_DONTCOPY;
        break;
      case kMadvDoFork:
        if (v.flags & VM_IO) error = true;
        nf &= ~VM_DONTCOPY;
        break;
      case kMadvWipeOnFork:
        if (v.is_file() || (v.flags & VM_SHARED)) error = true;
        nf |= VM_WIPEONFORK;
        break;
      case kMadvKeepOnFork:
        if (v.flags & VM_DROPPABLE) error = true;
        nf &= ~VM_WIPEONFORK;
        break;
      case kMadvDontDump:
        nf |= VM_DONTDUMP;
        break;
      case kMadvDoDump:
        if ((!(v.flags & VM_HUGETLB) && (v.flags & VM_SPECIAL)) || (v.flags & VM_DROPPABLE)) error = true;
        nf &= ~VM_DONTDUMP;
        break;
      case kMadvMergeable:
        // ksm_madvise(): silently ignored for VMAs KSM cannot handle
        // (vma_ksm_compatible()).
        if (!(v.flags & (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB | VM_MIXEDMAP |
                         VM_DROPPABLE))) {
          nf |= VM_MERGEABLE;
        }
        break;
      case kMadvUnmergeable:
        nf &= ~VM_MERGEABLE;
        break;
      case kMadvHugePage:
        nf = (nf & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
        break;  // hugepage_madvise()
      case kMadvNoHugePage:
        nf = (nf & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
        break;
      default:
        break;
    }
    if (error) break;  // EINVAL: earlier VMAs stay changed
    // madvise_update_vma(): unchanged flags mean no split and no merge.
    if (nf != v.flags) modify_flags(it, cursor, piece_end, nf, ch);
    cursor = piece_end;
  }
  collect_result(start, end, ch);
  return ch;
}

LayoutChange Layout::mremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, uint64_t flags, uint64_t new_addr) {
  using namespace abi;
  LayoutChange ch;
  // check_mremap_params()
  if (!page_aligned(old_addr) || !page_aligned(new_addr)) return ch;
  if (flags & ~(kMremapMayMove | kMremapFixed | kMremapDontUnmap)) return ch;
  if ((flags & kMremapFixed) && !(flags & kMremapMayMove)) return ch;
  if ((flags & kMremapDontUnmap) && (!(flags & kMremapMayMove) || old_len != new_len)) return ch;
  if (!page_align_up(old_len, old_len) || !page_align_up(new_len, new_len) || new_len == 0) return ch;
  if (old_addr + old_len < old_addr || new_addr + new_len < new_addr) return ch;
  const bool fixed = flags & kMremapFixed;
  const bool dontunmap = flags & kMremapDontUnmap;

  if (old_len == 0) {
    // Duplicating a shared mapping: the source stays, a new VMA of new_len
    // appears at new_addr (copy_vma() of the source at the same offset).
    auto src = containing(old_addr);
    if (src == vmas_.end() || !(src->second.flags & VM_MAYSHARE) || new_addr == old_addr) return ch;
    Vma d = src->second;
    d.pgoff += (old_addr - d.start) >> kPageShift;
    d.start = new_addr;
    d.end = new_addr + new_len;
    remove_range(d.start, d.end, ch);
    place_new(std::move(d), ch, MergeMode::kBoth, false);
    collect_result(new_addr, new_addr + new_len, ch);
    return ch;
  }

  if (any_sealed(old_addr, old_addr + old_len)) return ch;

  if (new_addr == old_addr && !fixed) {
    if (new_len <= old_len) {
      // Shrink in place: do_vmi_munmap() of the tail.
      remove_range(old_addr + new_len, old_addr + old_len, ch);
      collect_result(old_addr, old_addr + new_len, ch);
      return ch;
    }
    // Grow in place (expand_vma_in_place() -> vma_merge_extend()): the VMA
    // covers the old range up to its end, the new pages join it, and it may
    // merge with next when that becomes adjacent and compatible.
    auto it = containing(old_addr);
    if (it == vmas_.end() || it->second.end != old_addr + old_len) return ch;
    const uint64_t delta = new_len - old_len;
    Vma ext = it->second;
    ext.start = it->second.end;
    ext.end = ext.start + delta;
    ext.pgoff = it->second.pgoff + it->second.pages();
    remove_range(ext.start, ext.end, ch);  // nothing there if the model agrees with the kernel
    LayoutChange grow;
    place_new(std::move(ext), grow, MergeMode::kBoth, false);
    // Joining the VMA being grown is the expansion itself, not a merge.
    ch.merges += std::max(0, grow.merges - 1);
    ch.removed.insert(ch.removed.end(), grow.removed.begin(), grow.removed.end());
    collect_result(old_addr, old_addr + new_len, ch);
    return ch;
  }

  // Move (mremap_to() with MREMAP_FIXED, else move_vma() after the kernel
  // failed to grow in place).
  {
    // Overlapping source and destination: EINVAL (mremap_to()); the kernel
    // never picks such a destination itself.
    const uint64_t ne = new_addr + new_len;
    if (new_addr < old_addr + old_len && old_addr < ne) return ch;
    // MREMAP_FIXED unmaps the destination first; without it the kernel chose
    // a free range, so this only matters if the model was out of date.
    remove_range(new_addr, ne, ch);
  }
  if (fixed) {
    if (old_len > new_len) {
      remove_range(old_addr + new_len, old_addr + old_len, ch);
      old_len = new_len;
    }
  }
  const uint64_t old_end = old_addr + old_len;
  std::vector<Vma> pieces = overlapping(old_addr, old_end);
  if (pieces.empty()) return ch;
  // Without the 6.17+ multi-VMA move, the source must be one VMA.
  if (pieces.size() > 1 && !(fixed && !dontunmap && old_len == new_len)) return ch;

  std::vector<uint64_t> keep_ids;
  for (auto& p : pieces) {
    const bool whole = p.start >= old_addr && p.end <= old_end;
    const uint64_t ps = std::max(p.start, old_addr);
    const uint64_t pe = std::min(p.end, old_end);
    Vma d = p;
    // move_vma(): new_pgoff = vm_pgoff + offset into the VMA; copy_vma()
    // rebases a never-faulted anonymous VMA to its new address instead.
    d.pgoff = p.pgoff + ((ps - p.start) >> kPageShift);
    if (p.is_anonymous() && !p.anon_vma) d.pgoff = (new_addr + (ps - old_addr)) >> kPageShift;
    d.start = new_addr + (ps - old_addr);
    d.end = pieces.size() == 1 ? new_addr + new_len : d.start + (pe - ps);
    LayoutChange copy;
    auto at = place_new(std::move(d), copy, MergeMode::kBoth, false);
    // A whole VMA that moves without merging keeps its identity: the kernel
    // allocates a new vm_area_struct, but for the reader it is the same
    // mapping at a new address.
    if (whole && !dontunmap && copy.merges == 0) {
      at->second.id = p.id;
    }
    ch.merges += copy.merges;
    ch.removed.insert(ch.removed.end(), copy.removed.begin(), copy.removed.end());
  }
  if (dontunmap) {
    // dontunmap_complete(): the old VMA stays (now empty) and loses
    // VM_LOCKED/VM_LOCKONFAULT and VM_ACCOUNT (6.1: only the mlock bits).
    auto it = containing(old_addr);
    if (it != vmas_.end()) {
      touch(it->second);
      it->second.flags &= ~(VM_LOCKED_MASK | VM_ACCOUNT);
    }
  } else {
    remove_range(old_addr, old_end, ch);
  }
  collect_result(new_addr, new_addr + new_len, ch);
  return ch;
}

LayoutChange Layout::brk(uint64_t new_brk) {
  LayoutChange ch;
  // Without a known start_brk there is no heap to reason about.
  if (start_brk_ == 0) return ch;
  if (new_brk < start_brk_) return ch;  // brk below min_brk: unchanged
  uint64_t newbrk = 0, oldbrk = 0;
  if (!page_align_up(new_brk, newbrk) || !page_align_up(brk_, oldbrk)) return ch;
  if (oldbrk == newbrk) {
    brk_ = new_brk;
    return ch;
  }
  if (new_brk <= brk_) {
    // Shrink: do_vmi_align_munmap() of [newbrk, oldbrk); a sealed range
    // makes the whole call fail.
    if (any_sealed(newbrk, oldbrk)) return ch;
    brk_ = new_brk;
    remove_range(newbrk, oldbrk, ch);
    if (newbrk > start_brk_) collect_result(newbrk - kPageSize, newbrk, ch);
    return ch;
  }
  // Grow: refuse to come within a page (or the stack guard gap of a
  // VM_GROWSDOWN VMA) of the next mapping.
  auto next = vmas_.upper_bound(oldbrk);
  if (next != vmas_.begin() && std::prev(next)->second.end > oldbrk) --next;
  if (next != vmas_.end() && newbrk + kPageSize > vm_start_gap(next->second)) return ch;
  // brkvma = vma_prev_limit(vmi, start_brk): the last VMA below oldbrk that
  // reaches above start_brk. do_brk_flags() only tries to expand it
  // (vmg.just_expand: never merges with next, never with VMAs below
  // start_brk), otherwise it creates a new VMA.
  bool expand = false;
  auto prev = vmas_.lower_bound(oldbrk);
  if (prev != vmas_.begin()) {
    --prev;
    expand = prev->second.end == oldbrk && prev->second.end > start_brk_;
  }
  Vma h;
  h.start = oldbrk;
  h.end = newbrk;
  h.flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | def_flags_ | (soft_dirty_ ? VM_SOFTDIRTY : 0);
  h.pgoff = oldbrk >> kPageShift;
  place_new(std::move(h), ch, expand ? MergeMode::kPrevOnly : MergeMode::kNone, true);
  // Growing the heap VMA is not a merge for the reader.
  if (expand && ch.merges > 0) ch.merges -= 1;
  brk_ = new_brk;
  collect_result(oldbrk, newbrk, ch);
  return ch;
}

Layout::Map::iterator Layout::mlock_fixup(Map::iterator it, uint64_t start, uint64_t end, uint64_t new_flags,
                                          LayoutChange& ch) {
  const Vma& v = it->second;
  // mlock_fixup() leaves alone (no VM_LOCKED, no split, no merge) VMAs that
  // already have the flags and those !vma_supports_mlock(): VM_SPECIAL,
  // hugetlb, VM_DROPPABLE, the gate VMA; and secretmem. (DAX is unmodelled.)
  if (new_flags == v.flags || (v.flags & (VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE)) || v.start >= kTaskSizeMax ||
      (v.deleted && v.path == "/secretmem"))
    return it;
  // vma_modify_flags(): merge with a neighbour or split, as for mprotect.
  return modify_flags(it, start, end, new_flags, ch);
}

LayoutChange Layout::mlock(uint64_t start, uint64_t len, uint64_t lock_flags) {
  LayoutChange ch;
  // do_mlock(): len = PAGE_ALIGN(len + offset_in_page(start)); start &= PAGE_MASK.
  uint64_t alen = 0;
  if (len > UINT64_MAX - (start & kPageMask) || !page_align_up(len + (start & kPageMask), alen)) return ch;
  start &= ~kPageMask;
  const uint64_t end = start + alen;
  if (end <= start) return ch;  // 0: nothing to do; wrapped: EINVAL
  lock_flags &= VM_LOCKED_MASK;
  // apply_vma_lock_flags(): the first VMA must contain start; a hole stops
  // the walk (ENOMEM) with what came before it changed.
  uint64_t cursor = start;
  while (cursor < end) {
    auto it = containing(cursor);
    if (it == vmas_.end()) break;
    const uint64_t piece_end = std::min(end, it->second.end);
    const uint64_t new_flags = (it->second.flags & ~VM_LOCKED_MASK) | lock_flags;
    mlock_fixup(it, cursor, piece_end, new_flags, ch);
    cursor = piece_end;
  }
  collect_result(start, end, ch);
  return ch;
}

LayoutChange Layout::mlockall(uint64_t mcl_flags) {
  using namespace abi;
  LayoutChange ch;
  // apply_mlockall_flags()
  def_flags_ &= ~VM_LOCKED_MASK;
  if (mcl_flags & kMclFuture) {
    def_flags_ |= VM_LOCKED | ((mcl_flags & kMclOnFault) ? VM_LOCKONFAULT : 0);
    if (!(mcl_flags & kMclCurrent)) return ch;
  }
  uint64_t to_add = 0;
  if (mcl_flags & kMclCurrent) to_add = VM_LOCKED | ((mcl_flags & kMclOnFault) ? VM_LOCKONFAULT : 0);
  // Every VMA of the tree, whole (munlockall() too: to_add is then 0). A
  // VMA can merge with the next one, so continue after whatever it became.
  uint64_t cursor = 0;
  for (;;) {
    auto it = vmas_.lower_bound(cursor);
    if (it == vmas_.end() || it->second.start >= kTaskSizeMax) break;
    const uint64_t new_flags = (it->second.flags & ~VM_LOCKED_MASK) | to_add;
    it = mlock_fixup(it, it->second.start, it->second.end, new_flags, ch);
    cursor = it->second.end;
  }
  collect_result(0, kTaskSizeMax, ch);
  return ch;
}

LayoutChange Layout::shmat(const Vma& v) {
  Vma n = v;
  n.pgoff = 0;  // do_shmat(): do_mmap(file, addr, size, prot, MAP_SHARED, 0 /* pgoff */, ...)
  // Each attach maps a new struct file (alloc_file_clone() of the segment's
  // shmem file): is_mergeable_vma() never joins two attaches.
  n.file_key = 1 + static_cast<uint32_t>(shm_attaches_++ % 0xffffffffu);  // never 0 (= unknown)
  return mmap(n);
}

std::vector<std::pair<uint64_t, uint64_t>> Layout::shmdt_ranges(uint64_t addr) const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  if (addr & kPageMask) return out;  // EINVAL
  // ksys_shmdt(): from the VMA at or after addr, the first shm VMA whose
  // pgoff is its distance from addr names the segment (and its size, which
  // the model does not know: pieces of that attach stop at it, and lie
  // within it anyway unless mremap grew one); then every later VMA of the
  // same file that attaches at addr the same way.
  auto attaches_here = [addr](const Vma& v) {
    return v.is_sysv_shm() && v.start >= addr && ((v.start - addr) >> kPageShift) == v.pgoff;
  };
  auto it = vmas_.upper_bound(addr);
  if (it != vmas_.begin() && std::prev(it)->second.end > addr) --it;
  const Vma* seg = nullptr;
  for (; it != vmas_.end(); ++it) {
    if (!attaches_here(it->second)) continue;
    if (!seg)
      seg = &it->second;
    else if (!it->second.same_file(*seg))
      continue;
    out.emplace_back(it->second.start, it->second.end);
  }
  return out;
}

LayoutChange Layout::shmdt(uint64_t addr) {
  LayoutChange ch;
  for (const auto& [s, e] : shmdt_ranges(addr)) remove_range(s, e, ch);  // do_munmap() of each whole VMA
  return ch;
}

size_t Layout::mark_deleted(uint32_t dev, uint64_t ino) {
  size_t n = 0;
  for (auto& [start, v] : vmas_) {
    if (v.is_file() && !v.deleted && v.dev == dev && v.ino == ino) {
      v.deleted = true;
      bump_file_generation();
      n++;
    }
  }
  return n;
}

void Layout::mark_anon_vma(uint64_t addr) {
  auto it = containing(addr);
  if (it != vmas_.end() && it->second.is_anonymous()) it->second.anon_vma = true;
}

LayoutChange Layout::fault(uint64_t addr) {
  LayoutChange ch;
  if (find(addr)) {
    mark_anon_vma(addr);
    return ch;
  }
  // lock_mm_and_find_vma() -> expand_stack_locked() -> expand_downwards()
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.end() || !(it->second.flags & VM_GROWSDOWN)) return ch;
  const uint64_t address = addr & ~kPageMask;
  if (address < kMmapMinAddr) return ch;
  if (it != vmas_.begin()) {
    const Vma& prev = std::prev(it)->second;
    // Enforce stack_guard_gap against an accessible, non-stack neighbour.
    if (!(prev.flags & VM_GROWSDOWN) && (prev.flags & VM_ACCESS_FLAGS) && address - prev.end < kStackGuardGap) {
      return ch;
    }
  }
  // acct_stack_growth(): RLIMIT_STACK.
  if (stack_rlimit_ != 0 && it->second.end - address > stack_rlimit_) return ch;
  Vma v = it->second;
  const uint64_t grow = (v.start - address) >> kPageShift;
  v.start = address;
  v.pgoff -= grow;    // the stack keeps linear pgoff as it grows down
  v.anon_vma = true;  // expand_downwards() runs anon_vma_prepare() first
  erase(it);
  insert(v);
  ch.result.push_back(std::move(v));
  return ch;
}

LayoutChange Layout::reconcile(const Vma& truth) {
  check_vma_shape(truth, "Layout::reconcile");
  LayoutChange ch;
  auto over = overlapping(truth.start, truth.end);
  if (over.size() == 1 && over[0].same_attributes(truth)) return ch;
  // Identity: the model VMA that started exactly at truth.start lends its
  // id; if it started below, its head survives there and keeps the id (the
  // split rule), so truth gets a new one.
  uint64_t id = 0;
  auto c = containing(truth.start);
  const bool had_anon_vma = c != vmas_.end() && c->second.anon_vma;
  if (c != vmas_.end() && c->second.start == truth.start) id = c->second.id;
  remove_range(truth.start, truth.end, ch);
  Vma t = truth;
  t.anon_vma = truth.anon_vma || had_anon_vma;
  t.id = id != 0 ? id : new_id();
  insert(t);
  ch.result.push_back(std::move(t));
  return ch;
}

LayoutChange Layout::reconcile_range(uint64_t start, uint64_t end, const std::vector<Vma>& truth) {
  LayoutChange ch;
  std::vector<Vma> sorted = truth;
  std::sort(sorted.begin(), sorted.end(), [](const Vma& a, const Vma& b) { return a.start < b.start; });
  auto absorb = [&ch](LayoutChange&& c) {
    ch.removed.insert(ch.removed.end(), c.removed.begin(), c.removed.end());
    ch.splits += c.splits;
    ch.merges += c.merges;
  };
  uint64_t cursor = start;
  for (const auto& t : sorted) {
    if (t.start > cursor) {
      LayoutChange hole;
      remove_range(cursor, std::min(t.start, end), hole);
      absorb(std::move(hole));
    }
    absorb(reconcile(t));
    cursor = std::max(cursor, t.end);
  }
  if (cursor < end) {
    LayoutChange hole;
    remove_range(cursor, end, hole);
    absorb(std::move(hole));
  }
  collect_result(start, end, ch);
  return ch;
}

}  // namespace vmatrace
