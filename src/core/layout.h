#pragma once

// A user-space mirror of one mm_struct's VMA tree: the operations below apply
// the same split/merge/expand rules the kernel applies in mm/vma.c,
// mm/mmap.c, mm/mremap.c, mm/mprotect.c, mm/madvise.c, mm/mlock.c and
// ipc/shm.c (Linux 6.18), so that replaying a process's mmap/munmap/brk/
// mremap/mprotect/madvise/mlock*/shmat/shmdt/page-fault events reproduces
// its /proc/PID/maps.
//
// What the model cannot see, and therefore gets wrong in rare cases, is
// documented where it matters; the big one is the anon_vma: the kernel
// refuses to merge two anonymous VMAs that each already own a different
// anon_vma (both had pages faulted in separately, is_mergeable_anon_vma()),
// and copy_vma() rebases pgoff of a never-faulted anonymous VMA. The model
// assumes merges are allowed and pgoff is kept; the live tracer compares
// with the kernel after syscalls and calls reconcile() where they differ.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/interned.h"
#include "core/vm_flags.h"
#include "core/vma_map.h"

namespace vmatrace {

struct Vma {
  uint64_t start = 0, end = 0;  // [start, end), page aligned
  uint64_t flags = 0;           // kernel VM_* bits
  uint64_t pgoff = 0;           // in pages; anonymous: start>>12 at creation, kept across mremap moves
  uint64_t ino = 0;
  uint64_t id : 62 = 0;      // stable identity assigned by the Layout (2^62 VMAs are never made)
  bool deleted : 1 = false;  // print " (deleted)" after the path
  // The model's belief that the kernel attached an anon_vma (pages of this
  // private VMA were faulted in). Only two rules use it: mprotect_fixup()
  // (6.7+) drops VM_ACCOUNT of a never-faulted anonymous VMA turning
  // read-only, and copy_vma() rebases pgoff of a never-faulted anonymous VMA
  // to its new address. fault() and /proc seeding set it; merges OR it.
  bool anon_vma : 1 = false;
  uint32_t dev = 0;       // kernel dev_t encoding: major << 20 | minor
  uint32_t file_key = 0;  // opaque identity of the struct file if known (0 = unknown); see same_file()
  // Interned (one copy per distinct string, see core/interned.h): copying
  // a Vma copies no string.
  InternedString path;       // file path for file-backed VMAs ("" for anonymous)
  InternedString special;    // kernel-named special mapping: "[vdso]", "[vvar]", ...; never [heap]/[stack]
  InternedString anon_name;  // prctl(PR_SET_VMA_ANON_NAME) name, printed "[anon:NAME]"; must match to merge

  bool is_file() const { return !path.empty() || ino != 0; }
  // A SysV shared memory attach (vm_ops == &shm_vm_ops in the kernel): the
  // segment's shmem file "/SYSV<key, 8 hex digits>", always "(deleted)".
  bool is_sysv_shm() const;
  bool is_shared() const { return (flags & VM_MAYSHARE) != 0; }
  bool is_anonymous() const { return !is_file() && special.empty(); }
  std::string perms() const { return format_maps_perms(flags); }  // "rw-p"
  uint64_t pages() const { return (end - start) >> kPageShift; }
  bool contains(uint64_t addr) const { return addr >= start && addr < end; }
  // Same backing object, as far as the model can tell. The kernel compares
  // struct file pointers (is_mergeable_vma()); two open()s of one inode are
  // different files. With file_key known on both sides we compare that,
  // otherwise dev+ino+path.
  bool same_file(const Vma& o) const;
  // All attributes but id equal (what /proc and the kernel would show).
  bool same_attributes(const Vma& o) const;
  bool operator==(const Vma& o) const = default;
};

struct LayoutChange {        // what an operation did, for output
  std::vector<Vma> result;   // VMAs now covering the touched range, after merges (extended to the merged extents)
  std::vector<Vma> removed;  // VMAs (or pieces) that went away, including neighbours absorbed by a merge
  int merges = 0;            // neighbours joined (a merge with both sides counts 2)
  int splits = 0;            // __split_vma() calls
  bool changed() const { return !result.empty() || !removed.empty() || merges || splits; }
};

// Two VMAs that would merge if adjacent, as the kernel decides for a new
// range placed right after `prev` (can_vma_merge_after() seen from both
// sides): flags equal but VM_IGNORE_MERGE, no VM_SPECIAL, same file or both
// anonymous, same anon name, no kernel-named special mapping, no shared
// anonymous (each is its own shmem file), and prev.pgoff + pages == next.pgoff.
bool vmas_mergeable(const Vma& prev, const Vma& next);

class Layout {
 public:
  static constexpr uint64_t kStackGuardGap = 256 * kPageSize;  // mm/mmap.c stack_guard_gap default
  static constexpr uint64_t kMmapMinAddr = 65536;              // vm.mmap_min_addr default

  // Kernel configuration the model cannot infer from events.
  // CONFIG_MEM_SOFT_DIRTY: do_brk_flags() then sets VM_SOFTDIRTY on the heap.
  void set_soft_dirty_enabled(bool on) { soft_dirty_ = on; }
  // RLIMIT_STACK soft limit for acct_stack_growth(); 0 = unknown/unlimited.
  void set_stack_rlimit(uint64_t bytes) { stack_rlimit_ = bytes; }
  // mm->def_flags: flags every new VMA gets (mlockall(MCL_FUTURE) sets
  // VM_LOCKED, and VM_LOCKONFAULT with MCL_ONFAULT). 0 after exec; not
  // readable from /proc, so unknown (0) after an attach.
  void set_def_flags(uint64_t flags) { def_flags_ = flags; }
  uint64_t def_flags() const { return def_flags_; }
  // Off: the operations leave LayoutChange::result empty (for a caller
  // that derives what it shows itself: the Processor, which then does not
  // pay for a copy of the result VMAs per record). On by default.
  void set_collect_results(bool on) { collect_results_ = on; }
  // Off: the operations leave LayoutChange::removed empty too (a caller
  // whose readers never look at it: the Processor when no sink wants the
  // derived changes, where a munmap's copy of what went away was a heap
  // allocation per record). On by default.
  void set_collect_removed(bool on) { collect_removed_ = on; }

  // state the kernel prints with
  void set_brk(uint64_t start_brk, uint64_t brk);
  void set_start_stack(uint64_t start_stack);
  uint64_t start_brk() const { return start_brk_; }
  uint64_t brk() const { return brk_; }
  uint64_t start_stack() const { return start_stack_; }

  // seeding (/proc or a kernel walk): replaces all VMAs, assigns fresh ids.
  // Throws std::invalid_argument for unaligned, empty or overlapping VMAs.
  void seed(std::vector<Vma> vmas);
  void clear();
  // A checkpoint's VMAs back (core/checkpoint.h): as seed(), but each keeps
  // its id, and new ones count on from next_id. Throws std::invalid_argument
  // as seed() does, and for an id of 0 or at least next_id.
  void restore(std::vector<Vma> vmas, uint64_t next_id);

  // Operations mirroring the kernel; call them for syscalls that succeeded.
  // Arguments the kernel would reject with EINVAL (unaligned start, ...) give
  // an empty change. prot = PROT_* bits, flags = MAP_*/MREMAP_* bits (abi::).
  LayoutChange mmap(const Vma& v);
  LayoutChange munmap(uint64_t start, uint64_t len);
  // pkey_mprotect() with pkey >= 0 also sets the VMA's protection key
  // (VM_PKEY_BIT*); -1 is plain mprotect(), which keeps it (unmodelled: the
  // execute-only pkey a PROT_EXEC mprotect gets on CPUs with PKU).
  LayoutChange mprotect(uint64_t start, uint64_t len, uint64_t prot, int pkey = -1);
  LayoutChange madvise(uint64_t start, uint64_t len, int advice);
  LayoutChange mremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, uint64_t flags, uint64_t new_addr);
  LayoutChange brk(uint64_t new_brk);
  // mlock(), mlock2() and munlock(): apply_vma_lock_flags() with lock_flags
  // VM_LOCKED (mlock), VM_LOCKED|VM_LOCKONFAULT (mlock2 MLOCK_ONFAULT) or 0
  // (munlock); start is rounded down to its page as do_mlock() does.
  LayoutChange mlock(uint64_t start, uint64_t len, uint64_t lock_flags);
  // mlockall(MCL_* flags) and munlockall() (= mlockall(0)):
  // apply_mlockall_flags() sets def_flags and re-flags every VMA.
  LayoutChange mlockall(uint64_t mcl_flags);
  // shmat(): `v` is the attached segment's VMA as the kernel made it (range,
  // flags, file); do_shmat() maps it like a shared file mmap at offset 0,
  // through a new struct file per attach, so it never merges with another
  // attach of the same segment.
  LayoutChange shmat(const Vma& v);
  // shmdt(): ksys_shmdt() unmaps the SysV shm VMAs that attach at addr
  // (their pgoff is their distance from it), of the segment the first one
  // belongs to. shmdt_ranges() is what it would unmap, without doing it.
  LayoutChange shmdt(uint64_t addr);
  std::vector<std::pair<uint64_t, uint64_t>> shmdt_ranges(uint64_t addr) const;
  // Stack growth (see below) and, for a fault inside an anonymous VMA, the
  // anon_vma hint (do_anonymous_page() -> anon_vma_prepare()).
  LayoutChange fault(uint64_t addr);
  void mark_anon_vma(uint64_t addr);
  // The file (dev, ino) was unlinked: /proc prints its mappings with
  // " (deleted)" (d_unlinked() at print time). Returns how many changed.
  size_t mark_deleted(uint32_t dev, uint64_t ino);
  LayoutChange reconcile(const Vma& truth);
  // The kernel says [start, end) holds exactly `truth` (sorted or not, holes
  // allowed): reconcile() each and drop whatever the model has in the holes.
  LayoutChange reconcile_range(uint64_t start, uint64_t end, const std::vector<Vma>& truth);
  void fork_from(const Layout& parent);

  // queries
  const Vma* find(uint64_t addr) const;
  const Vma* find_by_id(uint64_t id) const;  // O(n)
  // Gives the VMA spanning exactly [start, end) the id `id` again; a VMA
  // that holds it now gets a fresh one. For a VMA a reconcile() re-created
  // (the model had merged it, the kernel had not): it is the one that was
  // there before, and the id went to its wrongly merged neighbour.
  bool restore_id(uint64_t start, uint64_t end, uint64_t id);
  // find_vma(): the first VMA ending above addr (the one a fault below it may grow).
  const Vma* find_next(uint64_t addr) const;
  std::vector<Vma> overlapping(uint64_t start, uint64_t end) const;
  // The same, appended to `out` (no temporary vector: the Processor's hot path).
  void append_overlapping(uint64_t start, uint64_t end, std::vector<Vma>& out) const;
  size_t size() const { return vmas_.size(); }
  bool empty() const { return vmas_.empty(); }
  std::vector<Vma> vmas() const;
  // f(const Vma&) for each VMA in address order, without copying them.
  template <class F>
  void for_each_vma(F&& f) const {
    for (const auto& [start, v] : vmas_) f(v);
  }
  // vma_is_initial_heap() / vma_is_initial_stack(): what /proc names
  // "[heap]" and "[stack]" (see maps_name() in proc_maps.h).
  bool is_initial_heap(const Vma& v) const;
  bool is_initial_stack(const Vma& v) const;
  uint64_t next_id() const { return next_id_; }
  // Changes whenever a file-backed VMA appears, goes or changes (range,
  // flags, pgoff, deletion): whoever derives something from the file
  // mappings alone (the unwinder's module list) rebuilds it only then.
  uint64_t file_generation() const { return file_gen_; }

 private:
  friend class Checkpoint;  // saves and restores the state below
  using Map = ChunkedMap<Vma>;

  uint64_t new_id() { return next_id_++; }
  Map::iterator containing(uint64_t addr);
  Map::iterator insert(Vma v);
  // __split_vma(): split the VMA containing addr (if addr is strictly inside
  // one) at addr; the lower piece keeps the id. Returns the upper piece.
  Map::iterator split_at(uint64_t addr, LayoutChange& ch);
  // vms_gather_munmap_vmas() + vms_complete_munmap_vmas(): split at the
  // edges and remove everything in [start, end).
  void remove_range(uint64_t start, uint64_t end, LayoutChange& ch);
  // vma_merge_new_range(): place `v` (no overlap left) merging with adjacent
  // prev/next when allowed. kPrevOnly = vmg.just_expand (do_brk_flags()).
  // soft_dirty_new: __mmap_complete()/do_brk_flags() set VM_SOFTDIRTY on the
  // result. Returns the VMA now covering v.
  enum class MergeMode { kNone, kPrevOnly, kBoth };
  Map::iterator place_new(Vma v, LayoutChange& ch, MergeMode mode, bool soft_dirty_new);
  // vma_modify(): give [start, end) inside `it` new flags, merging with
  // neighbours via vma_merge_existing_range() or splitting.
  Map::iterator modify_flags(Map::iterator it, uint64_t start, uint64_t end, uint64_t new_flags, LayoutChange& ch);
  void collect_result(uint64_t start, uint64_t end, LayoutChange& ch) const;
  // mlock_fixup(): the VMA takes new_flags (merging or splitting), unless
  // they are its flags already or it is one mlock never touches.
  Map::iterator mlock_fixup(Map::iterator it, uint64_t start, uint64_t end, uint64_t new_flags, LayoutChange& ch);
  bool any_sealed(uint64_t start, uint64_t end) const;
  // A VMA is about to change, appear or go: bumps file_gen_ if it is a file's.
  void touch(const Vma& v) {
    if (v.is_file()) bump_file_generation();
  }
  // Generations are unique over all Layouts, so a model that replaces
  // another at the same address never repeats its generation.
  void bump_file_generation();
  // Invalidates iterators at or after `it` (ChunkedMap's rules); insert()
  // invalidates all of them.
  Map::iterator erase(Map::iterator it) {
    touch(it->second);
    return vmas_.erase(it);
  }
  // The last VMA starting at or below addr (end() if none): the lookup
  // every query starts from. One record asks about the same place many
  // times (the rule, the kernel's VMA, the changes before and after), so the
  // answer's position is kept and its neighbourhood tried first.
  Map::iterator floor(uint64_t addr) const;
  // lower_bound() through floor().
  Map::iterator first_at_or_after(uint64_t addr) const;

  Map vmas_;
  uint64_t start_brk_ = 0, brk_ = 0, start_stack_ = 0;
  uint64_t next_id_ = 1;
  bool soft_dirty_ = false;
  uint64_t stack_rlimit_ = 0;
  uint64_t def_flags_ = 0;
  uint64_t shm_attaches_ = 0;  // makes each shmat()'s file identity unique
  uint64_t file_gen_ = 0;
  bool collect_results_ = true;
  bool collect_removed_ = true;
  void note_removed(LayoutChange& ch, const Vma& v) const {
    if (collect_removed_) ch.removed.push_back(v);
  }
  // floor()'s last answer, as a position: checked against the keys before
  // use, so no mutation, copy or move can make it wrong.
  mutable Map::Pos hint_;
};

}  // namespace vmatrace
