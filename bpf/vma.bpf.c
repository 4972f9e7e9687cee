/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The vma family: every store into a traced process's VMA tree
 * (mm->mm_mt), as the kernel made it: carried by the record of the traced
 * syscall in flight on the thread (VMAT_EV_SYSCALL_STORES), else one
 * VMAT_EV_VMA_KERNEL record each.
 * Merges, splits, expansions and new VMAs are all stores of a
 * vm_area_struct over a range; the frontend (core/kernel_view.h) folds the
 * stores of one syscall into VMA changes.
 *
 * Three flavours, one chosen per kernel (features.cpp):
 *  - fentry on the kernel's VMA-tree writer functions, found in the running
 *    kernel's BTF: vma_mas_store(vma, mas) (mm/mmap.c in 6.1; later kernels store
 *    through inlined vma_iter_*() helpers and have no such function), through
 *    which mmap_region(), vma_expand(), __vma_adjust() (merge, split,
 *    mremap in place), expand_stack and vma_link() store a VMA over its
 *    whole range, plus perf_event_mmap(vma) for do_brk_flags(), which
 *    stores with mas_store_*() directly (lib/ is built without ftrace and
 *    its mas_store_*() refuse probes). perf_event_mmap() also runs at the
 *    end of mmap_region() and mprotect_fixup(): a restatement of the final
 *    VMA, with mprotect's new flags;
 *  - kprobes on the same functions;
 *  - the maple_tree:ma_write raw tracepoint (Linux 6.1, where the VMA tree
 *    became a maple tree, commit d4af56c5c7c6 "mm: start tracking VMAs
 *    with maple tree"): every store, including the clearing ones.
 * Clearings the hooks miss (munmap's, brk shrinking, mremap's old range;
 * ma_write on 6.18 misses munmap's too) the frontend takes from the syscall.
 *
 * Only stores into the current task's own mm pass: dup_mmap() at fork
 * writes the child's tree and exec builds the new mm's stack before
 * current->mm switches; both have their own sources (fork copy, exec walk).
 */
#include "common.bpf.h"
#include "inflight.bpf.h"

/*
 * The last first-hand store this CPU reported, to drop its restatement.
 * maple_tree:ma_write fires twice for one store: in the entry point
 * (mas_store_prealloc(), mas_store_gfp(), mas_store()) and again in the
 * writer it picks (mas_wr_slot_store(), mas_wr_node_store(), ...) with the
 * same range and entry. With the fentry/kprobe hooks, perf_event_mmap()
 * restates what vma_mas_store() just stored. A restatement is dropped only
 * right after the identical first-hand store (`armed`, cleared by any
 * restatement): the same VMA address over the same range in a later syscall
 * (storm: mmap, munmap, mmap again, the slab hands back the same object) is
 * a new store and must not be mistaken for a repeat. A repeat that slips
 * through (the task moved CPUs in between) is harmless: stores are
 * idempotent.
 */
struct vmat_vma_last_store {
	__u64 id; /* pid_tgid */
	__u64 index;
	__u64 last;
	__u64 entry;
	__u64 armed;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmat_vma_last_store);
} vmat_vma_last SEC(".maps");

/*
 * A kernel pointer as a number. fentry arguments are typed (BTF) pointers,
 * on which the verifier forbids arithmetic such as the salting below; a
 * copy through the stack yields a plain scalar.
 */
static __always_inline __u64 vmat_ptr_value(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/*
 * Keeps the store with the traced syscall the current thread is in, to go
 * out with its exit record (VMAT_EV_SYSCALL_STORES): one ring reservation
 * and one header per syscall rather than per store. False when no traced
 * syscall is in flight (a fault growing the stack, a flavour without an
 * entry half: fexit), its storage is busy, or it holds
 * VMAT_SYSCALL_STORES_MAX already: the store is then a record of its own.
 */
static __always_inline bool vmat_vma_carry(__u64 index, __u64 last, __u64 addr,
					   struct vm_area_struct *vma, __u32 source)
{
	struct vmat_inflight *in;
	struct vmat_vma_store *st;
	__u32 i;

	in = bpf_task_storage_get(&vmat_inflight, bpf_get_current_task_btf(), 0, 0);
	if (!in || !in->sys)
		return false;
	i = in->nstores;
	if (i >= VMAT_SYSCALL_STORES_MAX)
		return false;
	/*
	 * Bounded again where it is used: clang may spill i before the test and
	 * reload it after, and 6.1's verifier does not carry the test's bound
	 * to the reloaded copy ("R8 unbounded memory access": the 6.1 VM refused
	 * vma_store_raw). The mask is a no-op (a power of two, tested above).
	 */
	_Static_assert((VMAT_SYSCALL_STORES_MAX & (VMAT_SYSCALL_STORES_MAX - 1)) == 0,
		       "VMAT_SYSCALL_STORES_MAX must be a power of two");
	barrier_var(i);
	i &= VMAT_SYSCALL_STORES_MAX - 1;
	st = &in->stores[i];
	st->index = index;
	st->last = last;
	if (addr) {
		st->vma_key = addr ^ vmat_vma_key_salt;
		vmat_read_vma(vma, &st->vma);
	} else {
		st->vma_key = 0;
		__builtin_memset(&st->vma, 0, sizeof(st->vma));
	}
	in->store_source = source;
	in->nstores = i + 1;
	return true;
}

/*
 * Reports that [index, last] now holds the VMA `vma` (at address `addr`),
 * or nothing when addr is 0, for the current task, whose mm the caller
 * checked: with the syscall in flight, or as a record built in place in
 * the ring buffer.
 */
static __always_inline int vmat_vma_emit(__u32 tgid, __u64 index, __u64 last, __u64 addr,
					 struct vm_area_struct *vma, __u32 source, bool restatement)
{
	struct vmat_vma_kernel_event *e;
	__u32 zero = 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct vmat_vma_last_store *l = bpf_map_lookup_elem(&vmat_vma_last, &zero);

	if (l) {
		if (restatement) {
			bool repeat = l->armed && l->id == id && l->index == index &&
				      l->last == last && l->entry == addr;

			l->armed = 0;
			if (repeat)
				return 0;
		} else {
			l->id = id;
			l->index = index;
			l->last = last;
			l->entry = addr;
			l->armed = 1;
		}
	}
	if (vmat_vma_carry(index, last, addr, vma, source))
		return 0;
	e = bpf_ringbuf_reserve(&vmat_events, sizeof(*e), 0);
	if (!e) {
		vmat_count_loss(tgid);
		return 0;
	}
	vmat_fill_hdr(&e->hdr, VMAT_EV_VMA_KERNEL, sizeof(*e));
	e->source = source;
	e->_pad = 0;
	e->index = index;
	e->last = last;
	if (addr) {
		e->vma_key = addr ^ vmat_vma_key_salt;
		vmat_read_vma(vma, &e->vma);
	} else {
		e->vma_key = 0;
		__builtin_memset(&e->vma, 0, sizeof(e->vma));
	}
	bpf_ringbuf_submit(e, vmat_wakeup_flags());
	return 0;
}

/*
 * The current task's mm, when its process is traced; else NULL. Read
 * through the BTF task pointer: no helper call.
 */
static __always_inline struct mm_struct *vmat_vma_traced_mm(__u32 tgid)
{
	if (!vmat_lookup_traced(tgid))
		return NULL;
	return bpf_get_current_task_btf()->mm;
}

/*
 * struct ma_state begins {tree, index, last} (include/linux/maple_tree.h,
 * 6.1 on): one read of the three where the relocated offsets say they are
 * still adjacent, else one each.
 */
struct vmat_mas_head {
	__u64 tree;
	__u64 index;
	__u64 last;
};

static __always_inline long vmat_read_mas_head(struct ma_state *mas, struct vmat_mas_head *h)
{
	const __u32 o_tree = bpf_core_field_offset(struct ma_state, tree);

	if (bpf_core_field_offset(struct ma_state, index) == o_tree + 8 &&
	    bpf_core_field_offset(struct ma_state, last) == o_tree + 16)
		return bpf_probe_read_kernel(h, sizeof(*h), (const char *)mas + o_tree);
	h->tree = (__u64)BPF_CORE_READ(mas, tree);
	h->index = BPF_CORE_READ(mas, index);
	h->last = BPF_CORE_READ(mas, last);
	return 0;
}

/* A store through a maple-tree state (ma_write): only into current's VMA tree. */
static __always_inline int vmat_vma_store(struct ma_state *mas, void *entry, __u32 source,
					  const void *fn)
{
	char name[8] = {};
	bool restatement;
	__u32 tgid = vmat_current_tgid();
	struct mm_struct *mm = vmat_vma_traced_mm(tgid);
	struct vmat_mas_head h;

	if (!mm || vmat_read_mas_head(mas, &h) || h.tree != (__u64)&mm->mm_mt)
		return 0;
	/*
	 * `fn` names the function that stored. The writers a store entry point
	 * hands over to (lib/maple_tree.c: mas_wr_*(), mas_is_span_wr())
	 * restate its store; any other name is first-hand (an unknown one only
	 * costs a duplicate record).
	 */
	bpf_probe_read_kernel(name, 6, fn);
	restatement = name[0] == 'm' && name[1] == 'a' && name[2] == 's' && name[3] == '_' &&
		      ((name[4] == 'w' && name[5] == 'r') || (name[4] == 'i' && name[5] == 's'));
	return vmat_vma_emit(tgid, h.index, h.last, (__u64)entry, (struct vm_area_struct *)entry,
			     source, restatement);
}

/*
 * A VMA stored over its whole range by a VMA function (vma_mas_store,
 * perf_event_mmap): only one of current's own VMAs (dup_mmap() at fork
 * writes the child's tree; exec builds the new mm before switching).
 */
static __always_inline int vmat_vma_whole(struct vm_area_struct *vma, __u32 source,
					  bool restatement)
{
	__u32 tgid = vmat_current_tgid();
	struct mm_struct *mm = vmat_vma_traced_mm(tgid);
	__u64 start, end;

	if (!mm || BPF_CORE_READ(vma, vm_mm) != mm)
		return 0;
	start = BPF_CORE_READ(vma, vm_start);
	end = BPF_CORE_READ(vma, vm_end);
	if (end <= start)
		return 0;
	return vmat_vma_emit(tgid, start, end - 1, vmat_ptr_value(vma), vma, source, restatement);
}

/* TP_PROTO(const char *fn, struct ma_state *mas, unsigned long piv, void *val) */
SEC("raw_tp/ma_write")
int vma_store_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return vmat_vma_store((struct ma_state *)ctx->args[1], (void *)ctx->args[3],
			      VMAT_VMAK_MAPLE_TREE, (const void *)ctx->args[0]);
}

SEC("fentry/vma_mas_store")
int BPF_PROG(vma_mas_store_fentry, struct vm_area_struct *vma)
{
	return vmat_vma_whole(vma, VMAT_VMAK_FENTRY, false);
}

SEC("fentry/perf_event_mmap")
int BPF_PROG(vma_perf_mmap_fentry, struct vm_area_struct *vma)
{
	return vmat_vma_whole(vma, VMAT_VMAK_FENTRY, true);
}

SEC("kprobe/vma_mas_store")
int BPF_KPROBE(vma_mas_store_kprobe, struct vm_area_struct *vma)
{
	return vmat_vma_whole(vma, VMAT_VMAK_KPROBE, false);
}

SEC("kprobe/perf_event_mmap")
int BPF_KPROBE(vma_perf_mmap_kprobe, struct vm_area_struct *vma)
{
	return vmat_vma_whole(vma, VMAT_VMAK_KPROBE, true);
}
