/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Page faults: one record (or, with --faults=summary, one map update) per
 * fault the kernel counts in the task's min_flt/maj_flt.
 *
 * Two sources, joined per thread:
 *  - exceptions:page_fault_user / page_fault_kernel (raw tracepoints, x86
 *    only, no tracefs): fire at fault entry with the hardware error code
 *    (read/write/exec) but cannot tell major from minor;
 *  - the perf software events page-faults-maj / page-faults-min (a
 *    perf_event program on a per-CPU event, sample_period 1): fire from
 *    mm_account_fault() at the end of handle_mm_fault(), in the faulting
 *    task, with the fault address, and only for faults that succeeded.
 * When the perf events are attached (vmat_fault_perf), the tracepoint only
 * notes {addr, ip, error_code} for its thread and the perf program emits the
 * record with both halves: faults that fail (SIGSEGV) or are retried emit
 * nothing extra, so records match the kernel's counters. Without them, the
 * tracepoint emits as before, major/minor unknown.
 */
#include "common.bpf.h"
#include "vmatrace/abi/fault_summary.h"

#define VMAT_USER_ADDR_END 0x0000800000000000ULL
#define X86_PF_WRITE (1u << 1)
#define X86_PF_INSTR (1u << 4)

/* Set by the loader before load. */
const volatile __u32 vmat_fault_perf = 0;    /* the perf programs are attached: join */
const volatile __u32 vmat_fault_summary = 0; /* aggregate in maps, no records */

struct vmat_fault_pending {
	__u64 addr; /* ~0: none in progress (consumed by the perf program) */
	__u64 ip;
	__u32 error_code;
	__u32 flags;
	__u32 rss; /* --rss: VMAT_FAULT_RSS_* bits of the fault in progress */
	__u32 _pad;
	__u64 done; /* addr of the fault the perf program consumed last */
};

/*
 * The fault a thread is handling, from its entry tracepoint. One slot per
 * thread suffices: a thread handles one fault at a time. Task-local storage:
 * found from the task without a hash lookup, allocated on a thread's first
 * fault and freed with the thread (no program at thread exit).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vmat_fault_pending);
} vmat_fault_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_FSUM_VMA_MAX);
	__type(key, struct vmat_fsum_vma_key);
	__type(value, struct vmat_fsum_vma_val);
} vmat_fsum_vma SEC(".maps");

/* Allocated on use: most traces touch far fewer pages than the bound. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_FSUM_CHUNK_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vmat_fsum_addr_key);
	__type(value, struct vmat_fsum_page_chunk);
} vmat_fsum_page SEC(".maps");

/* A zeroed chunk to create keys from (too big for the stack of aggregate()). */
const struct vmat_fsum_page_chunk vmat_fsum_chunk_zero = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_FSUM_IP_MAX);
	__type(key, struct vmat_fsum_addr_key);
	__type(value, struct vmat_fault_counts);
} vmat_fsum_ip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_FSUM_THREAD_MAX);
	__type(key, struct vmat_fsum_thread_key);
	__type(value, struct vmat_fault_counts);
} vmat_fsum_thread SEC(".maps");

/* Keys not added because their map was full, by enum vmat_fsum_map. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VMAT_FSUM_NMAPS);
	__type(key, __u32);
	__type(value, __u64);
} vmat_fsum_dropped SEC(".maps");

static __always_inline void fsum_drop(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&vmat_fsum_dropped, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void counts_add(struct vmat_fault_counts *c, __u32 error_code, __u32 flags)
{
	__sync_fetch_and_add(&c->faults, 1);
	if (!(flags & VMAT_FAULT_NO_ERROR_CODE)) {
		if (error_code & X86_PF_INSTR)
			__sync_fetch_and_add(&c->exec, 1);
		else if (error_code & X86_PF_WRITE)
			__sync_fetch_and_add(&c->write, 1);
		else
			__sync_fetch_and_add(&c->read, 1);
	}
	if (flags & VMAT_FAULT_MAJOR)
		__sync_fetch_and_add(&c->major, 1);
	if (flags & VMAT_FAULT_MINOR)
		__sync_fetch_and_add(&c->minor, 1);
}

/* Looks up key in map, creating it from init when absent; NULL when full. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

struct fsum_find {
	struct vmat_fsum_vma_key key;
	struct vmat_fsum_vma_val val;
};

static long fsum_vma_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct fsum_find *f = data;
	struct file *file = BPF_CORE_READ(vma, vm_file);

	f->key.start = BPF_CORE_READ(vma, vm_start);
	f->val.end = BPF_CORE_READ(vma, vm_end);
	f->val.vm_flags = BPF_CORE_READ(vma, vm_flags);
	f->val.pgoff = BPF_CORE_READ(vma, vm_pgoff);
	if (file) {
		struct inode *inode = BPF_CORE_READ(file, f_inode);

		f->val.ino = BPF_CORE_READ(inode, i_ino);
		f->val.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	return 0;
}

/*
 * --faults=summary: the VMA each thread last faulted in, so the next fault
 * there skips bpf_find_vma (the maple-tree walk and mmap_lock try-lock).
 * Valid while the mm's mm_lock_seq (a seqcount_t, CONFIG_PER_VMA_LOCK) is what it
 * was before the walk: every change to the VMA tree or to a VMA's bounds or
 * flags holds mmap_lock for writing, which bumps it (mmap_write_lock() and
 * mmap_write_unlock(): odd while held). Without the field, no caching.
 */
struct vmat_fsum_vma_cache {
	__u64 mm;
	__u64 start;
	struct vmat_fsum_vma_val val; /* counts unused (zero) */
	__u32 seq;
	__u32 valid;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vmat_fsum_vma_cache);
} vmat_fsum_cache SEC(".maps");

/* The mm's write-lock sequence; *stable false while write-locked or unknown. */
static __always_inline __u32 fsum_mm_seq(struct mm_struct *mm, bool *stable)
{
	__u32 seq;

	*stable = false;
	/* A seqcount_t on 6.18; an int bumped only at unlock before that: no caching. */
	if (!bpf_core_field_exists(mm->mm_lock_seq.sequence))
		return 0;
	seq = BPF_CORE_READ(mm, mm_lock_seq.sequence);
	*stable = !(seq & 1);
	return seq;
}

/*
 * The VMA holding addr, found without bpf_find_vma(). The perf program runs
 * with interrupts off (perf_swevent_event()), where bpf_find_vma() cannot
 * release mmap_lock itself: it queues the unlock as irq_work, a self-IPI per
 * fault (a VM exit on a virtual machine): ~6.5 us of the program's ~7 us on
 * a storm of mmap/touch/munmap, where every fault is in a new VMA. Instead,
 * the VMA tree (mm->mm_mt, a maple tree in RCU mode) is walked as
 * lock_vma_under_rcu() walks it for the fault itself (mtree_range_walk() in
 * lib/maple_tree.c): the program runs under rcu_read_lock(), and the fault's
 * own VMA is locked (vma_start_read()) or mmap_lock held while
 * mm_account_fault() runs, so its slot cannot change under the walk. Each
 * node is read with one bpf_probe_read_kernel(). The result is checked
 * (its vm_mm is this mm, addr inside it); any surprise (a dead node, an
 * unknown node type, a layout this code does not know) falls back to
 * bpf_find_vma().
 */
#define VMAT_MT_NODE_BYTES 256 /* sizeof(struct maple_node) on 6.1 and 6.18 */
#define VMAT_MT_WORDS (VMAT_MT_NODE_BYTES / 8)
#define VMAT_MT_MAX_DEPTH 8	  /* a tree of 16^8 leaves: far above vm.max_map_count */
#define VMAT_MT_NODE_MASK 255ULL  /* MAPLE_NODE_MASK */
#define VMAT_MT_RANGE64_PIVOTS 15 /* MAPLE_RANGE64_SLOTS - 1 */
#define VMAT_MT_ARANGE64_PIVOTS 9 /* MAPLE_ARANGE64_SLOTS - 1 */

struct vmat_mt_node {
	__u64 w[VMAT_MT_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmat_mt_node);
} vmat_mt_scratch SEC(".maps");

/* Where a node type keeps its pivots, slots and data end (in bytes). */
struct vmat_mt_layout {
	__u32 pivot, slot, meta, npivots;
};

static __always_inline bool mt_layout(__u32 type, struct vmat_mt_layout *l)
{
	if (type == bpf_core_enum_value(enum maple_type, maple_arange_64)) {
		l->pivot = bpf_core_field_offset(struct maple_arange_64, pivot);
		l->slot = bpf_core_field_offset(struct maple_arange_64, slot);
		l->meta = bpf_core_field_offset(struct maple_arange_64, meta);
		l->npivots = VMAT_MT_ARANGE64_PIVOTS;
	} else if (type == bpf_core_enum_value(enum maple_type, maple_range_64) ||
		   type == bpf_core_enum_value(enum maple_type, maple_leaf_64)) {
		l->pivot = bpf_core_field_offset(struct maple_range_64, pivot);
		l->slot = bpf_core_field_offset(struct maple_range_64, slot);
		l->meta = bpf_core_field_offset(struct maple_range_64, meta);
		l->npivots = VMAT_MT_RANGE64_PIVOTS;
	} else {
		return false; /* maple_dense: not used by the VMA tree */
	}
	/* Word-aligned and inside the node, as on every kernel with the tree. */
	return !(l->pivot & 7) && !(l->slot & 7) &&
	       l->pivot + l->npivots * 8 <= VMAT_MT_NODE_BYTES &&
	       l->slot + (l->npivots + 1) * 8 <= VMAT_MT_NODE_BYTES && l->meta < VMAT_MT_NODE_BYTES;
}

/* The entry of mm's VMA tree at index (a vm_area_struct *, or 0 for a gap); 0 also when unsure. */
static __always_inline __u64 mt_lookup(struct mm_struct *mm, __u64 index, struct vmat_mt_node *n)
{
	__u64 entry, max = ~0ULL;

	/* Constants after relocation: on a kernel without the tree, dead code. */
	if (!bpf_core_field_exists(mm->mm_mt) || !bpf_core_type_exists(struct maple_node) ||
	    bpf_core_type_size(struct maple_node) != VMAT_MT_NODE_BYTES ||
	    !bpf_core_field_exists(struct maple_range_64, meta) ||
	    !bpf_core_field_exists(struct maple_arange_64, meta))
		return 0;
	entry = (__u64)BPF_CORE_READ(mm, mm_mt.ma_root);
	for (int depth = 0; depth < VMAT_MT_MAX_DEPTH; depth++) {
		__u64 node = entry & ~VMAT_MT_NODE_MASK;
		__u32 type = (entry >> 3) & 0xf; /* MAPLE_NODE_TYPE_SHIFT, _MASK */
		struct vmat_mt_layout l;
		__u32 end, off, i;

		/*
		 * The root is tagged as a node (xa_is_node(); a root that is no
		 * node holds index 0 only); below it, slots hold node pointers
		 * with the type in their low bits.
		 */
		if ((depth == 0 && (entry & 3) != 2) || entry <= 4096 || !mt_layout(type, &l))
			return 0;
		if (bpf_probe_read_kernel(n->w, VMAT_MT_NODE_BYTES, (void *)node))
			return 0;
		/* ma_data_end() */
		end = ((__u8 *)n->w)[l.meta & (VMAT_MT_NODE_BYTES - 1)];
		if (l.npivots == VMAT_MT_RANGE64_PIVOTS) {
			__u64 last = n->w[(l.pivot / 8 + VMAT_MT_RANGE64_PIVOTS - 1) &
					  (VMAT_MT_WORDS - 1)];

			if (last)
				end = last == max ? VMAT_MT_RANGE64_PIVOTS - 1
						  : VMAT_MT_RANGE64_PIVOTS;
		}
		if (end > l.npivots)
			return 0;
		/* The first slot whose pivot (its range's last index) reaches index. */
		off = end;
		for (i = 0; i < VMAT_MT_RANGE64_PIVOTS; i++) {
			__u64 pivot;

			if (i >= end)
				break;
			pivot = n->w[(l.pivot / 8 + i) & (VMAT_MT_WORDS - 1)];
			if (pivot >= index) {
				off = i;
				max = pivot;
				break;
			}
		}
		entry = n->w[(l.slot / 8 + off) & (VMAT_MT_WORDS - 1)];
		/* ma_dead_node(): a node being freed points to itself. */
		if ((n->w[0] & ~VMAT_MT_NODE_MASK) == node)
			return 0;
		if (type == bpf_core_enum_value(enum maple_type, maple_leaf_64))
			return entry;
	}
	return 0;
}

/* The VMA holding addr into f, from the VMA tree; false when not sure of it. */
/*
 * The VMA holding addr into f, from the VMA tree; 0 when not sure of it.
 * The nodes and then the VMA's first bytes (every field read lies in them,
 * CO-RE offsets) go through the per-CPU scratch node, not the stack: the
 * perf program's stack plus bpf_find_vma()'s callback frame must stay
 * within 512 bytes (the 6.1 verifier counts them together).
 *
 * A global (non-static, noinline) function, verified once on its own:
 * inlined, its loops were walked again in each fault program and added
 * ~190 ms to the load (`trace --faults=summary -- /bin/true`). The mm
 * arrives as a scalar: every read of it is a probe read anyway.
 */
__noinline int vmat_fsum_walk_vma(__u64 mm_addr, __u64 addr, struct fsum_find *f)
{
	struct mm_struct *mm = (struct mm_struct *)mm_addr;
	const __u32 o_start = bpf_core_field_offset(struct vm_area_struct, vm_start);
	const __u32 o_end = bpf_core_field_offset(struct vm_area_struct, vm_end);
	const __u32 o_mm = bpf_core_field_offset(struct vm_area_struct, vm_mm);
	const __u32 o_flags = bpf_core_field_offset(struct vm_area_struct, vm_flags);
	const __u32 o_pgoff = bpf_core_field_offset(struct vm_area_struct, vm_pgoff);
	const __u32 o_file = bpf_core_field_offset(struct vm_area_struct, vm_file);
	const __u32 len = vmat_max_u32(vmat_max_u32(vmat_max_u32(o_start, o_end),
						    vmat_max_u32(o_mm, o_flags)),
				       vmat_max_u32(o_pgoff, o_file)) +
			  sizeof(__u64);
	const __u32 zero = 0;
	struct vmat_mt_node *n = bpf_map_lookup_elem(&vmat_mt_scratch, &zero);
	struct file *file;
	__u64 vma, start, end;

	/* Word-aligned 8-byte fields inside the scratch node, as on 6.1 and 6.18. */
	if (!f || !n || bpf_core_field_size(struct vm_area_struct, vm_flags) != 8 ||
	    ((o_start | o_end | o_mm | o_flags | o_pgoff | o_file) & 7) || len > VMAT_MT_NODE_BYTES)
		return 0;
	vma = mt_lookup(mm, addr, n);
	if (!vma || bpf_probe_read_kernel(n->w, len, (void *)vma))
		return 0;
	start = n->w[o_start / 8];
	end = n->w[o_end / 8];
	if (n->w[o_mm / 8] != (__u64)mm || addr < start || addr >= end)
		return 0;
	f->key.start = start;
	f->val.end = end;
	f->val.vm_flags = n->w[o_flags / 8];
	f->val.pgoff = n->w[o_pgoff / 8];
	file = (struct file *)n->w[o_file / 8];
	if (file) {
		struct inode *inode = BPF_CORE_READ(file, f_inode);

		f->val.ino = BPF_CORE_READ(inode, i_ino);
		f->val.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	return 1;
}

/* By enum vmat_fsum_lookup: per CPU, no atomics on the fault path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMAT_FSUM_NLOOKUPS);
	__type(key, __u32);
	__type(value, __u64);
} vmat_fsum_lookup SEC(".maps");

static __always_inline void fsum_count_lookup(__u32 how)
{
	__u64 *n = bpf_map_lookup_elem(&vmat_fsum_lookup, &how);

	if (n)
		*n += 1;
}

/* The VMA holding addr into f: from the thread's cache when still valid. */
static __always_inline void fsum_find_vma(__u64 addr, struct fsum_find *f)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct vmat_fsum_vma_cache *vc;
	bool stable;
	__u32 seq = fsum_mm_seq(mm, &stable);

	vc = bpf_task_storage_get(&vmat_fsum_cache, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (vc && stable && vc->valid && vc->mm == (__u64)mm && vc->seq == seq &&
	    addr >= vc->start && addr < vc->val.end) {
		f->key.start = vc->start;
		f->val = vc->val;
		fsum_count_lookup(VMAT_FSUM_BY_CACHE);
		return;
	}
	if (vmat_fsum_walk_vma((__u64)mm, addr, f))
		fsum_count_lookup(VMAT_FSUM_BY_WALK);
	else if (!bpf_find_vma(task, addr, fsum_vma_cb, f, 0))
		fsum_count_lookup(VMAT_FSUM_BY_FIND_VMA);
	else
		fsum_count_lookup(VMAT_FSUM_NOT_FOUND);
	if (vc) {
		vc->mm = (__u64)mm;
		vc->seq = seq;
		vc->start = f->key.start;
		vc->val = f->val;
		vc->valid = stable && f->key.start != 0;
	}
}

static __always_inline void aggregate(__u32 tgid, __u32 tid, __u64 addr, __u64 ip, __u32 error_code,
				      __u32 flags)
{
	struct fsum_find f = {};
	struct vmat_fsum_addr_key ak = {.tgid = tgid};
	struct vmat_fsum_thread_key tk = {.tgid = tgid, .tid = tid};
	struct vmat_fault_counts zero = {};
	struct vmat_fsum_page_chunk *chunk;
	struct vmat_fsum_vma_val *vv;
	struct vmat_fault_counts *c;
	__u64 page = addr >> 12;

	/*
	 * The VMA as the kernel holds it now (the fault has been handled, so
	 * a grown stack is already grown). Should the walk of the VMA tree
	 * fail, bpf_find_vma() only try-locks mmap_lock: on contention the
	 * fault counts as not attributed (start 0).
	 */
	f.key.tgid = tgid;
	fsum_find_vma(addr, &f);
	vv = lookup_or_init(&vmat_fsum_vma, &f.key, &f.val);
	if (vv)
		counts_add(&vv->c, error_code, flags);
	else
		fsum_drop(VMAT_FSUM_VMA);

	ak.addr = page >> VMAT_FSUM_CHUNK_SHIFT;
	chunk = lookup_or_init(&vmat_fsum_page, &ak, &vmat_fsum_chunk_zero);
	if (chunk)
		__sync_fetch_and_add(&chunk->faults[page & (VMAT_FSUM_CHUNK_PAGES - 1)], 1);
	else
		fsum_drop(VMAT_FSUM_PAGE);

	ak.addr = ip;
	c = lookup_or_init(&vmat_fsum_ip, &ak, &zero);
	if (c)
		counts_add(c, error_code, flags);
	else
		fsum_drop(VMAT_FSUM_IP);

	c = lookup_or_init(&vmat_fsum_thread, &tk, &zero);
	if (c)
		counts_add(c, error_code, flags);
	else
		fsum_drop(VMAT_FSUM_THREAD);
}

/*
 * Inside execve: set by bprm_execve() around the whole exec, sched_process_exec
 * included (fs/exec.c; the field exists on 6.1 and 6.18).
 */
static __always_inline bool current_in_execve(void)
{
	/* A plain load through the BTF task pointer, not a probe read. */
	struct task_struct *task = bpf_get_current_task_btf();

	if (!bpf_core_field_exists(task->in_execve))
		return false;
	return BPF_CORE_READ_BITFIELD(task, in_execve);
}

static __always_inline void emit(__u32 tgid, __u64 addr, __u64 ip, __u32 error_code, __u32 flags)
{
	struct vmat_fault_event *e;

	if (current_in_execve())
		flags |= VMAT_FAULT_IN_EXEC;

	e = bpf_ringbuf_reserve(&vmat_events, sizeof(*e), 0);
	if (!e) {
		vmat_count_loss(tgid);
		return;
	}
	vmat_fill_hdr(&e->hdr, VMAT_EV_FAULT, sizeof(*e));
	e->addr = addr;
	e->ip = ip;
	e->error_code = error_code;
	e->flags = flags;
	bpf_ringbuf_submit(e, vmat_wakeup_flags());
}

/*
 * --rss: the kernel's resident counters of each traced process, from the
 * rss_stat tracepoint (raw: mm, member; 6.1 adds the new count). It fires
 * at every change of an mm's counters (add_mm_counter()), whoever makes it:
 * the process itself (faults, munmap, madvise) or another task (reclaim,
 * khugepaged, fork's copy into a child, a remote access). The counter is
 * read as /proc/PID/status reads it, every CPU's share summed, and the
 * change since the last one reported goes out: with the fault record when
 * a fault mapped exactly one page (VMAT_FAULT_RSS_ONE: no extra record for
 * the common fault), as a VMAT_EV_RSS_STAT record when it moved more than
 * one page (a THP, fault-around, an unmapped range, fork's copy), and
 * otherwise (one page unmapped, swapped, reclaimed) only in the counters
 * kept here, which the frontend reads into the stream at its drains and at
 * exit (process.bpf.c): no record per page on the munmap-heavy paths.
 */
/*
 * 6.1: the counters are atomics in mm->rss_stat.count[] (and each thread
 * caches up to 64 faults' worth before folding them in: SPLIT_RSS_COUNTING).
 * 6.2 made them per-CPU counters (commit f1a7941243c1, "mm: convert mm's
 * rss stats into percpu_counter"): struct percpu_counter rss_stat[].
 */
struct mm_rss_stat___old {
	atomic_long_t count[VMAT_MM_COUNTERS];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/*
 * Where each CPU's copy of a per-CPU variable is. The kernel's own table
 * (__per_cpu_offset[], this_cpu_off) is not in kallsyms here (no
 * CONFIG_KALLSYMS_ALL), so a typed ksym cannot name it; a per-CPU array of
 * ours tells the same: bpf_map_lookup_percpu_elem() returns
 * per_cpu_ptr(pptrs[0], cpu), so its distance from pptrs[0] is that CPU's
 * offset.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vmat_cpu_probe SEC(".maps");

/* A pointer's value as a number (the verifier allows no arithmetic on some kinds). */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 a = 0;

	bpf_probe_read_kernel(&a, sizeof(a), &p);
	return a;
}

/*
 * Each CPU's offset, found once (they are fixed at boot): vmat_ncpus of
 * them, at most VMAT_MAX_CPUS (the CPUs past it are not summed).
 */
#define VMAT_MAX_CPUS 1024
static __u64 vmat_cpu_off[VMAT_MAX_CPUS];
static __u32 vmat_ncpus;

struct rss_cpus {
	__u64 base; /* vmat_cpu_probe's pptrs[0] */
	__u32 n;
};

static long rss_find_cpu(__u32 cpu, struct rss_cpus *c)
{
	__u32 zero = 0;
	const void *slot = bpf_map_lookup_percpu_elem(&vmat_cpu_probe, &zero, cpu);

	if (!slot)
		return 1; /* past nr_cpu_ids */
	vmat_cpu_off[cpu & (VMAT_MAX_CPUS - 1)] = addr_of(slot) - c->base;
	c->n = cpu + 1;
	return 0;
}

static __always_inline __u32 rss_cpus(void)
{
	struct rss_cpus c = {};

	if (vmat_ncpus)
		return vmat_ncpus;
	if (bpf_probe_read_kernel(&c.base, sizeof(c.base),
				  (void *)(addr_of(&vmat_cpu_probe) +
					   bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	bpf_loop(VMAT_MAX_CPUS, rss_find_cpu, &c, 0);
	vmat_ncpus = c.n;
	return c.n;
}

struct rss_sum {
	__u64 counters; /* s32 __percpu * */
	__s64 sum;
};

static long rss_sum_cpu(__u32 i, struct rss_sum *c)
{
	__s32 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v),
			      (void *)(c->counters + vmat_cpu_off[i & (VMAT_MAX_CPUS - 1)]));
	c->sum += v;
	return 0;
}

/*
 * Each kernel's reader is a subprogram of its own: the other one's CO-RE
 * offset does not resolve there (the field's type differs), and clang would
 * otherwise hoist it above the test that skips it (6.1 refused the load).
 */
static __noinline __s64 rss_counter_atomic(struct mm_struct *mm, __u32 member)
{
	__u64 at = (__u64)mm + bpf_core_field_offset(struct mm_struct___old, rss_stat.count) +
		   (member & (VMAT_MM_COUNTERS - 1)) * sizeof(atomic_long_t);
	__s64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)at);
	return v;
}

static __noinline __s64 rss_counter_percpu(struct mm_struct *mm, __u32 member)
{
	member &= VMAT_MM_COUNTERS - 1;
	struct percpu_counter *fbc =
		(void *)((__u64)mm + bpf_core_field_offset(struct mm_struct, rss_stat) +
			 member * bpf_core_type_size(struct percpu_counter));
	const __u32 o_count = bpf_core_field_offset(struct percpu_counter, count);
	const __u32 o_counters = bpf_core_field_offset(struct percpu_counter, counters);
	struct rss_sum c = {};
	__u32 n = rss_cpus();

	/* count and counters in one read (lockdep may make the lock too big for that) */
	if (o_count + 8 <= 64 && o_counters + 8 <= 64) {
		__u64 w[8];
		const char *b = (const char *)w;
		const __u32 len = (o_count > o_counters ? o_count : o_counters) + 8;

		if (bpf_probe_read_kernel(w, len, fbc))
			return 0;
		c.sum = *(const __s64 *)(b + o_count);
		c.counters = *(const __u64 *)(b + o_counters);
	} else {
		c.sum = BPF_CORE_READ(fbc, count);
		c.counters = (__u64)BPF_CORE_READ(fbc, counters);
	}
	/* percpu_counter_sum(): count plus every CPU's share. */
	bpf_loop(n, rss_sum_cpu, &c, 0);
	return c.sum;
}

/* get_mm_counter_sum(): the exact value, as task_mem() shows it on 6.16+. */
static __always_inline __s64 rss_counter(struct mm_struct *mm, __u32 member)
{
	if (bpf_core_type_exists(struct mm_rss_stat___old))
		return rss_counter_atomic(mm, member);
	if (!bpf_core_field_exists(mm->rss_stat))
		return 0;
	return rss_counter_percpu(mm, member);
}

SEC("raw_tp/rss_stat")
int rss_stat_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct mm_struct *mm = (struct mm_struct *)ctx->args[0];
	__u32 member = ctx->args[1] & (VMAT_MM_COUNTERS - 1), tgid, flags = 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct vmat_fault_pending *p;
	struct vmat_rss_state *st;
	struct vmat_traced *t;
	__u64 addr = 0;
	__s64 delta;

	if (task->mm == mm) {
		tgid = vmat_current_tgid();
	} else {
		/* Another task changed it: the mm's owner (CONFIG_MEMCG) says whose it is. */
		struct task_struct *owner;

		if (!bpf_core_field_exists(mm->owner))
			return 0;
		owner = BPF_CORE_READ(mm, owner);
		if (!owner)
			return 0; /* exit_mmap() of a process gone: its exit record says so */
		tgid = BPF_CORE_READ(owner, tgid);
		flags |= VMAT_RSS_STAT_OTHER_TASK;
	}
	t = vmat_lookup_traced(tgid);
	if (!t)
		return 0;
	st = &t->rss;
	if (st->mm != (__u64)mm) {
		/*
		 * Another task's change to an mm we do not follow yet: exec's new
		 * mm before it becomes current, or the old one torn down after.
		 */
		if (flags & VMAT_RSS_STAT_OTHER_TASK)
			return 0;
		for (int i = 0; i < VMAT_MM_COUNTERS; i++)
			st->pages[i] = rss_counter(mm, i);
		st->mm = (__u64)mm;
		vmat_rss_emit(tgid, member, 0, flags | VMAT_RSS_STAT_BASE, 0, st);
		return 0;
	}
	delta = rss_counter(mm, member) - st->pages[member];
	if (!delta)
		return 0;
	/*
	 * Two threads changing the counter at once may both see the other's
	 * change: the sum of the deltas stays the counter (the next change
	 * corrects an overshoot).
	 */
	__sync_fetch_and_add(&st->pages[member], delta);
	if (delta == -1)
		return 0; /* one page unmapped: the frontend reads it from st */
	if (!(flags & VMAT_RSS_STAT_OTHER_TASK) && vmat_fault_perf && !vmat_fault_summary) {
		p = bpf_task_storage_get(&vmat_fault_pending, task, 0, 0);
		if (p && p->addr != ~0ULL) {
			if (delta == 1 && !p->rss) {
				p->rss = VMAT_FAULT_RSS_ONE | member << VMAT_FAULT_RSS_SHIFT;
				return 0;
			}
			flags |= VMAT_RSS_STAT_IN_FAULT;
			addr = p->addr;
		}
	}
	if (delta == 1)
		return 0;
	vmat_rss_emit(tgid, member, delta, flags, addr, st);
	return 0;
}

static __always_inline int on_fault(struct bpf_raw_tracepoint_args *ctx, __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct pt_regs *regs;
	__u64 addr = ctx->args[0], ip;

	if (!vmat_lookup_traced(tgid))
		return 0;
	if (addr >= VMAT_USER_ADDR_END)
		return 0;
	regs = (struct pt_regs *)ctx->args[1];
	ip = BPF_CORE_READ(regs, ip);
	if (vmat_fault_perf) {
		struct vmat_fault_pending *p;

		p = bpf_task_storage_get(&vmat_fault_pending, bpf_get_current_task_btf(), 0,
					 BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (p) {
			/*
			 * A previous fault that never ended in a perf event (it
			 * failed) leaves its page in the counters the frontend reads.
			 */
			p->rss = 0;
			p->addr = addr;
			p->ip = ip;
			p->error_code = ctx->args[2];
			p->flags = flags;
		}
		return 0;
	}
	if (vmat_fault_summary)
		aggregate(tgid, tid, addr, ip, ctx->args[2], flags);
	else
		emit(tgid, addr, ip, ctx->args[2], flags);
	return 0;
}

SEC("raw_tp/page_fault_user")
int fault_user_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fault(ctx, 0);
}

SEC("raw_tp/page_fault_kernel")
int fault_kernel_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fault(ctx, VMAT_FAULT_KERNEL_MODE);
}

static __always_inline int on_perf(struct bpf_perf_event_data *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct vmat_fault_pending *p;
	__u64 addr = ctx->addr, ip;
	__u32 error_code = 0, flags = kind;

	if (!vmat_lookup_traced(tgid))
		return 0;
	if (addr >= VMAT_USER_ADDR_END)
		return 0;
	p = bpf_task_storage_get(&vmat_fault_pending, bpf_get_current_task_btf(), 0, 0);
	if (p && p->addr == addr) {
		ip = p->ip;
		error_code = p->error_code;
		flags |= p->flags | p->rss;
		p->rss = 0;
		p->addr = ~0ULL; /* consumed: a retry must not match it again */
		p->done = addr;
	} else if (p && p->addr == ~0ULL && p->done == addr) {
		/*
		 * The same fault again, from a second event of this thread: one
		 * it inherited and one the loader opened on it while listing the
		 * process's threads, or a per-task one and the per-CPU fallback
		 * (bpf_loader.cpp, attach_task_fault_perf). Both fire in one
		 * perf_sw_event() call, with no fault entry between them.
		 */
		return 0;
	} else {
		/* No entry seen (the program attached mid-fault): access unknown. */
		ip = ctx->regs.ip;
		flags |= VMAT_FAULT_NO_ERROR_CODE;
		if (ip >= VMAT_USER_ADDR_END) /* the kernel's own code faulted */
			flags |= VMAT_FAULT_KERNEL_MODE;
	}
	if (vmat_fault_summary)
		aggregate(tgid, tid, addr, ip, error_code, flags);
	else
		emit(tgid, addr, ip, error_code, flags);
	return 0;
}

SEC("perf_event")
int fault_major_perf(struct bpf_perf_event_data *ctx)
{
	return on_perf(ctx, VMAT_FAULT_MAJOR);
}

SEC("perf_event")
int fault_minor_perf(struct bpf_perf_event_data *ctx)
{
	return on_perf(ctx, VMAT_FAULT_MINOR);
}
