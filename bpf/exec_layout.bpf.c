/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The layout exec built, read by the kernel itself at sched_process_exec:
 * every VMA of the new mm (ELF segments, brk, stack, vdso, vvar) before the
 * first user instruction runs, so the dynamic loader cannot race the read.
 * Uses the bpf_iter_task_vma kfuncs (Linux 6.7, commit 4ac454682158
 * "bpf: Introduce task_vma open-coded iterator kfuncs"); the loader disables
 * this program where they are missing and falls back to /proc at exec.
 */
#include "common.bpf.h"

extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
				 __u64 addr) __weak __ksym;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __weak __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __weak __ksym;

#define SNAP_PATH sizeof(struct vmat_vma_snapshot_event)

/*
 * Emit one VMA. A global function, so the verifier checks it once on its
 * own instead of inside every state of the iterator loop (which exceeded
 * the one-million-instruction limit). The VMA arrives as a scalar: every
 * read of it goes through bpf_probe_read_kernel anyway.
 */
__noinline int vmat_emit_vma_snapshot(__u64 vma_addr, __u32 seq, __u32 tgid)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)vma_addr;
	struct vmat_scratch *s = vmat_scratch();
	struct vmat_vma_snapshot_event *e;
	__u32 len, size;

	if (!s)
		return 0;
	e = (void *)s->buf;
	__builtin_memset(e, 0, sizeof(*e));
	vmat_read_vma(vma, &e->vma);
	len = vmat_read_vma_path(vma, VMAT_SCRATCH_WALK, (char *)s->buf + SNAP_PATH, &e->vma.state);
	if (len > VMAT_PATH_MAX)
		len = 0;
	e->seq = seq;
	e->path_len = len;
	size = sizeof(*e) + len;
	vmat_fill_hdr(&e->hdr, VMAT_EV_VMA_SNAPSHOT, size);
	vmat_output(e, size, tgid);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int exec_layout_iter(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = vmat_current_tgid();
	struct vmat_vma_snapshot_event end = {};
	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;
	__u32 seq = 0;
	int err;

	/* May run before process_exec_raw clears wait_exec: both are exec. */
	if (!vmat_lookup_traced_any(tgid))
		return 0;
	/*
	 * It fails (-EBUSY) where the new mm's mmap lock cannot be taken
	 * without waiting (mmap_read_trylock()), and the walk then yields no
	 * VMA: the terminator says so, and the frontend reads the layout from
	 * /proc instead of taking an empty walk for the layout.
	 */
	err = bpf_iter_task_vma_new(&it, task, 0);
	while ((vma = bpf_iter_task_vma_next(&it))) {
		__u64 addr = 0;

		/* Launder the trusted pointer into a scalar for the global function. */
		bpf_probe_read_kernel(&addr, sizeof(addr), &vma);
		vmat_emit_vma_snapshot(addr, seq++, tgid);
	}
	bpf_iter_task_vma_destroy(&it);
	/* An empty terminator: the reader knows the walk is complete. */
	end.seq = seq;
	end.flags = VMAT_SNAP_LAST | (err ? VMAT_SNAP_FAILED : 0);
	end.err = err;
	vmat_fill_hdr(&end.hdr, VMAT_EV_VMA_SNAPSHOT, sizeof(end));
	vmat_output(&end, sizeof(end), tgid);
	return 0;
}
