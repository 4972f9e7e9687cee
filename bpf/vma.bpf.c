/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The vma family: every store into a traced process's VMA tree
 * (mm->mm_mt), as the kernel made it, one VMAT_EV_VMA_KERNEL record each.
 * Merges, splits, expansions and new VMAs are all stores of a
 * vm_area_struct over a range; the frontend (core/kernel_view.h) folds the
 * stores of one syscall into VMA changes.
 *
 * Three flavours of the same hook, one chosen per kernel (features.cpp):
 *  - fentry on mas_store_prealloc() / mas_store_gfp() (lib/maple_tree.c),
 *    through which every VMA-tree write goes on 6.1 and 6.18;
 *  - kprobes on the same functions;
 *  - the maple_tree:ma_write raw tracepoint (Linux 6.1, where the VMA tree
 *    became a maple tree, commit d4af56c5c7c6 "mm: start tracking VMAs
 *    with maple tree"). On 6.18 it does not report the clearing of an
 *    unmapped range: the frontend applies munmap from the syscall.
 *
 * Only stores into the current task's own mm pass: dup_mmap() at fork
 * writes the child's tree and exec builds the new mm's stack before
 * current->mm switches; both have their own sources (fork copy, exec walk).
 */
#include "common.bpf.h"

/*
 * The last store this CPU reported. maple_tree:ma_write fires twice for one
 * store: in mas_store_prealloc()/mas_store_gfp() and again in the writer
 * they pick (mas_wr_slot_store(), mas_wr_node_store(), ...) with the same
 * range and entry; the repeat is dropped here. A repeat that slips through
 * (the task moved CPUs in between) is harmless: stores are idempotent.
 */
struct vmat_vma_last_store {
	__u64 id; /* pid_tgid */
	__u64 index;
	__u64 last;
	__u64 entry;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmat_vma_last_store);
} vmat_vma_last SEC(".maps");

/* XORed into each vm_area_struct address: the record keeps an identity, not a kernel pointer. */
const volatile __u64 vmat_vma_key_salt __weak = 0;

static __always_inline int vmat_vma_store(struct ma_state *mas, void *entry, __u32 source)
{
	__u32 tgid = vmat_current_tgid();
	struct task_struct *task;
	struct mm_struct *mm;
	struct vmat_vma_kernel_event e;

	if (!vmat_lookup_traced(tgid))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	mm = BPF_CORE_READ(task, mm);
	if (!mm)
		return 0;
	if ((void *)BPF_CORE_READ(mas, tree) != (void *)&mm->mm_mt)
		return 0;
	__builtin_memset(&e, 0, sizeof(e));
	e.source = source;
	e.index = BPF_CORE_READ(mas, index);
	e.last = BPF_CORE_READ(mas, last);
	{
		__u32 zero = 0;
		__u64 id = bpf_get_current_pid_tgid();
		struct vmat_vma_last_store *l = bpf_map_lookup_elem(&vmat_vma_last, &zero);

		if (l) {
			if (l->id == id && l->index == e.index && l->last == e.last &&
			    l->entry == (__u64)entry)
				return 0;
			l->id = id;
			l->index = e.index;
			l->last = e.last;
			l->entry = (__u64)entry;
		}
	}
	if (entry) {
		e.vma_key = (__u64)entry ^ vmat_vma_key_salt;
		vmat_read_vma((struct vm_area_struct *)entry, &e.vma);
	}
	vmat_fill_hdr(&e.hdr, VMAT_EV_VMA_KERNEL, sizeof(e));
	vmat_output(&e, sizeof(e), tgid);
	return 0;
}

/* TP_PROTO(const char *fn, struct ma_state *mas, unsigned long piv, void *val) */
SEC("raw_tp/ma_write")
int vma_store_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return vmat_vma_store((struct ma_state *)ctx->args[1], (void *)ctx->args[3], VMAT_VMAK_MAPLE_TREE);
}

SEC("fentry/mas_store_prealloc")
int BPF_PROG(vma_store_prealloc_fentry, struct ma_state *mas, void *entry)
{
	return vmat_vma_store(mas, entry, VMAT_VMAK_FENTRY);
}

SEC("fentry/mas_store_gfp")
int BPF_PROG(vma_store_gfp_fentry, struct ma_state *mas, void *entry)
{
	return vmat_vma_store(mas, entry, VMAT_VMAK_FENTRY);
}

SEC("kprobe/mas_store_prealloc")
int BPF_KPROBE(vma_store_prealloc_kprobe, struct ma_state *mas, void *entry)
{
	return vmat_vma_store(mas, entry, VMAT_VMAK_KPROBE);
}

SEC("kprobe/mas_store_gfp")
int BPF_KPROBE(vma_store_gfp_kprobe, struct ma_state *mas, void *entry)
{
	return vmat_vma_store(mas, entry, VMAT_VMAK_KPROBE);
}
