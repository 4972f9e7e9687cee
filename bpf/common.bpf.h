/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by every vmatrace BPF object: the maps (declared __weak so that
 * `bpftool gen object` folds the copies of each into one), the in-kernel
 * process filter, record emission with batched wake-ups, and the readers of
 * struct vm_area_struct and of file paths.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "vmatrace/abi/events.h"

#define VMAT_MAX_TRACED 65536
#define VMAT_PATH_COMPONENTS 32
#define VMAT_NAME_MAX 256
/* Scratch space for building one record with its trailing path. */
#define VMAT_SCRATCH_SIZE (4 * VMAT_PATH_MAX)
/* Where in the scratch buffer the path walk writes (upper half). */
#define VMAT_SCRATCH_WALK (VMAT_SCRATCH_SIZE / 2)

/* Knobs set by the loader between open and load. */
const volatile __u64 vmat_wakeup_bytes __weak = 256 * 1024;
/*
 * Without the kernel's exec walk (bpf_iter_task_vma, 6.7+), a followed
 * process is stopped at exec (SIGSTOP before its first instruction) so the
 * frontend can read /proc before the dynamic loader changes the layout;
 * the frontend continues it.
 */
const volatile __u32 vmat_stop_on_exec __weak = 0;
/*
 * --cgroup: the cgroup v2 id (the directory's inode) whose members are
 * traced, those forked into it and those moved into it; 0: off.
 */
const volatile __u64 vmat_cgroup_id __weak = 0;
/*
 * Without CAP_SYS_PTRACE: the tracer's fsuid, fsgid and effective
 * capabilities, against which each followed exec is judged (process.bpf.c).
 */
const volatile __u32 vmat_ptrace_limit __weak = 0;
const volatile __u32 vmat_ptrace_uid __weak = 0;
const volatile __u32 vmat_ptrace_gid __weak = 0;
const volatile __u64 vmat_ptrace_caps __weak = 0;
/*
 * XORed into each vm_area_struct (and mm_struct) address: the record keeps
 * an identity, not a kernel pointer.
 */
const volatile __u64 vmat_vma_key_salt __weak = 0;
/* --comm: a process whose exec gives it this name is traced from that exec; "": off. */
const volatile char vmat_comm_filter[VMAT_COMM_LEN] __weak = {};

/*
 * The traced set as a bitmap by thread group id, tested before anything
 * else: the hooks are attached system-wide (tracepoints, per-CPU perf
 * events), so every process on the machine runs them, and one that is not
 * traced now leaves after a load and a bit test instead of a hash lookup
 * (bpf/traced.bpf.c defines it; PID_MAX_LIMIT is 2^22 on 64-bit: 512 KiB).
 * A set bit only says "look in vmat_traced_pids", which decides: the bit is
 * set before its entry is added (here and in BpfTracer::trace_pid) and
 * cleared only when the process is gone (its exit), so a bit never misses a
 * traced process. One left set (a process untraced from user space, whose
 * syscall in flight still completes with its record) costs that process
 * the lookup, not a wrong answer.
 */
#define VMAT_TRACED_WORDS 65536
extern __u64 vmat_traced_bits[VMAT_TRACED_WORDS];

static __always_inline bool vmat_maybe_traced(__u32 tgid)
{
	return (vmat_traced_bits[(tgid >> 6) & (VMAT_TRACED_WORDS - 1)] >> (tgid & 63)) & 1;
}

static __always_inline void vmat_traced_bit_set(__u32 tgid)
{
	__sync_fetch_and_or(&vmat_traced_bits[(tgid >> 6) & (VMAT_TRACED_WORDS - 1)],
			    1ULL << (tgid & 63));
}

static __always_inline void vmat_traced_bit_clear(__u32 tgid)
{
	__sync_fetch_and_and(&vmat_traced_bits[(tgid >> 6) & (VMAT_TRACED_WORDS - 1)],
			     ~(1ULL << (tgid & 63)));
}

/* Thread group ids being traced: what the bitmap above points to. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_MAX_TRACED);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled at creation otherwise */
	__type(key, __u32);
	__type(value, struct vmat_traced);
} vmat_traced_pids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} vmat_events SEC(".maps") __weak;

/* Records dropped because the ring buffer was full, per thread group. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VMAT_MAX_TRACED);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled at creation otherwise */
	__type(key, __u32);
	__type(value, __u64);
} vmat_lost SEC(".maps") __weak;

/*
 * Every reservation failure, whoever's: never deleted, so the frontend can
 * prove that the losses it reported are all the kernel failed to deliver.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vmat_lost_all SEC(".maps") __weak;

struct vmat_scratch {
	__u8 buf[VMAT_SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmat_scratch);
} vmat_scratch_map SEC(".maps") __weak;

static __always_inline __u32 vmat_current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/* Any traced process, including one still waiting for its exec. */
static __always_inline struct vmat_traced *vmat_lookup_traced_any(__u32 tgid)
{
	if (!vmat_maybe_traced(tgid))
		return NULL;
	return bpf_map_lookup_elem(&vmat_traced_pids, &tgid);
}

/*
 * A process whose events we want now. A command vmatrace spawns is traced
 * from before its exec, but what its pre-exec copy of vmatrace does (COW
 * faults while it waits to exec) is noise: skip it until the exec.
 */
static __always_inline struct vmat_traced *vmat_lookup_traced(__u32 tgid)
{
	struct vmat_traced *t;

	if (!vmat_maybe_traced(tgid))
		return NULL;
	t = bpf_map_lookup_elem(&vmat_traced_pids, &tgid);
	return t && !t->wait_exec ? t : NULL;
}

static __always_inline void vmat_fill_hdr(struct vmat_hdr *h, __u32 type, __u32 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->size = size;
	h->ts = bpf_ktime_get_ns();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline void vmat_count_loss(__u32 tgid)
{
	__u64 one = 1, *n;
	__u32 zero = 0;

	n = bpf_map_lookup_elem(&vmat_lost_all, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	n = bpf_map_lookup_elem(&vmat_lost, &tgid);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	/* Another CPU may insert the first loss at the same moment: add to it. */
	if (bpf_map_update_elem(&vmat_lost, &tgid, &one, BPF_NOEXIST) == 0)
		return;
	n = bpf_map_lookup_elem(&vmat_lost, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/*
 * Wake the reader only past a fill watermark: a wake-up per record costs the
 * traced program a cross-CPU IPI each time (measured 5x on the storm loop);
 * the frontend drains on a short timer instead.
 */
static __always_inline __u64 vmat_wakeup_flags(void)
{
	if (bpf_ringbuf_query(&vmat_events, BPF_RB_AVAIL_DATA) >= vmat_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Returns 0 when the record went into the ring buffer. */
static __always_inline long vmat_output(void *rec, __u32 size, __u32 tgid)
{
	long err = bpf_ringbuf_output(&vmat_events, rec, size, vmat_wakeup_flags());

	if (err)
		vmat_count_loss(tgid);
	return err;
}

static __always_inline void *vmat_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vmat_scratch_map, &zero);
}

/* --rss: a VMAT_EV_RSS_STAT record of the current task's process. */
static __always_inline void vmat_rss_emit(__u32 tgid, __u32 member, __s64 delta, __u32 flags,
					  __u64 addr, const struct vmat_rss_state *st)
{
	struct vmat_rss_stat_event *e = bpf_ringbuf_reserve(&vmat_events, sizeof(*e), 0);

	if (!e) {
		vmat_count_loss(tgid);
		return;
	}
	vmat_fill_hdr(&e->hdr, VMAT_EV_RSS_STAT, sizeof(*e));
	e->member = member;
	e->flags = flags;
	e->delta = delta;
	e->addr = addr;
	e->mm_key = st->mm ^ vmat_vma_key_salt;
	for (int i = 0; i < VMAT_MM_COUNTERS; i++)
		e->pages[i] = st->pages[i];
	bpf_ringbuf_submit(e, vmat_wakeup_flags());
}

/*
 * Walk a dentry up to the global root, crossing mounts, writing the path
 * right-aligned into the scratch buffer at [walk_off, walk_off +
 * VMAT_PATH_MAX). Mirrors prepend_path() in fs/d_path.c, including its
 * handling of dentries that are their own root but not a mount root (shmem
 * "dev/zero", memfd): their own name is the whole path.
 *
 * One step per bpf_loop() iteration, so the verifier checks the step once
 * rather than once per unrolled component (which made a walk inside an
 * open-coded VMA iterator "too complex").
 */
struct vmat_walk {
	__u64 dentry;
	__u64 vfsmnt;
	__u64 mnt;
	__u32 off;
	__u32 walk_off;
	__u32 state;
	__u32 done;
};

static long vmat_walk_step(__u32 i, struct vmat_walk *w)
{
	struct dentry *dentry = (struct dentry *)w->dentry;
	struct vfsmount *vfsmnt = (struct vfsmount *)w->vfsmnt;
	struct mount *mnt = (struct mount *)w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct vmat_scratch *s = vmat_scratch();
	struct qstr name;
	__u32 len, off;
	char *buf;

	if (!s)
		return 1;
	if (dentry == mnt_root) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

		if (mnt_parent == mnt) {
			w->done = 1; /* the root of the namespace */
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = (__u64)mnt_parent;
		w->vfsmnt = (__u64)mnt_parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len;
	off = w->off;
	if (len >= VMAT_NAME_MAX || len + 1 > off) {
		w->state |= VMAT_VMA_PATH_TRUNC;
		w->done = 1;
		return 1;
	}
	off -= len;
	buf = (char *)s->buf + (w->walk_off & (VMAT_SCRATCH_SIZE / 2 - 1));
	if (bpf_probe_read_kernel(buf + (off & (VMAT_PATH_MAX - 1)), len & (VMAT_NAME_MAX - 1),
				  name.name)) {
		w->done = 1;
		return 1;
	}
	off -= 1;
	buf[off & (VMAT_PATH_MAX - 1)] = '/';
	w->off = off;
	if (dentry == parent) {
		w->done = 1;
		return 1;
	}
	w->dentry = (__u64)parent;
	return 0;
}

static __always_inline __u32 vmat_walk_path(struct file *file, __u32 walk_off, __u32 *state)
{
	struct vmat_walk w = {};
	struct vmat_scratch *s = vmat_scratch();
	char *buf;

	if (!s)
		return VMAT_PATH_MAX;
	buf = (char *)s->buf + (walk_off & (VMAT_SCRATCH_SIZE / 2 - 1));
	w.dentry = (__u64)BPF_CORE_READ(file, f_path.dentry);
	w.vfsmnt = (__u64)BPF_CORE_READ(file, f_path.mnt);
	w.mnt = w.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w.off = VMAT_PATH_MAX - 1;
	w.walk_off = walk_off;
	buf[VMAT_PATH_MAX - 1] = '\0';
	bpf_loop(VMAT_PATH_COMPONENTS, vmat_walk_step, &w, 0);
	if (!w.done)
		w.state |= VMAT_VMA_PATH_TRUNC;
	*state |= w.state;
	if (w.off >= VMAT_PATH_MAX - 1) {
		w.off = VMAT_PATH_MAX - 2;
		buf[VMAT_PATH_MAX - 2] = '/';
	}
	return w.off;
}

/* d_unlinked() in include/linux/dcache.h, plus unhashed pseudo files. */
static __always_inline bool vmat_file_deleted(struct file *file)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);

	return BPF_CORE_READ(dentry, d_hash.pprev) == NULL;
}

/*
 * The vm_area_struct fields vmat_read_vma() needs all lie near its start
 * (vm_file ends at byte 96 on 6.18, 120 on 6.1, 168 on 5.17 before the
 * maple tree removed vm_next/vm_prev/vm_rb): one bpf_probe_read_kernel()
 * of that prefix replaces one per field. The offsets are CO-RE-relocated
 * constants, so the verifier knows the bounds and drops the path not taken
 * (field by field, for a layout where the prefix would not fit).
 */
#define VMAT_VMA_PREFIX_MAX 176

static __always_inline __u32 vmat_max_u32(__u32 a, __u32 b)
{
	return a > b ? a : b;
}

static __always_inline void vmat_read_vma_file(struct file *file, struct vmat_vma_info *out)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	out->state |= VMAT_VMA_FILE;
	out->ino = BPF_CORE_READ(inode, i_ino);
	out->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (vmat_file_deleted(file))
		out->state |= VMAT_VMA_DELETED;
}

static __always_inline void vmat_read_vma(struct vm_area_struct *vma, struct vmat_vma_info *out)
{
	const __u32 o_start = bpf_core_field_offset(struct vm_area_struct, vm_start);
	const __u32 o_end = bpf_core_field_offset(struct vm_area_struct, vm_end);
	const __u32 o_flags = bpf_core_field_offset(struct vm_area_struct, vm_flags);
	const __u32 o_pgoff = bpf_core_field_offset(struct vm_area_struct, vm_pgoff);
	const __u32 o_file = bpf_core_field_offset(struct vm_area_struct, vm_file);
	const __u32 len = vmat_max_u32(vmat_max_u32(vmat_max_u32(o_start, o_end),
						    vmat_max_u32(o_flags, o_pgoff)),
				       o_file) +
			  sizeof(__u64);
	struct file *file;

	out->ino = 0;
	out->dev = 0;
	if (len <= VMAT_VMA_PREFIX_MAX &&
	    bpf_core_field_size(struct vm_area_struct, vm_flags) == sizeof(__u64)) {
		__u64 w[VMAT_VMA_PREFIX_MAX / sizeof(__u64)];
		const char *b = (const char *)w;

		if (bpf_probe_read_kernel(w, len, vma)) {
			out->start = out->end = out->flags = out->pgoff = 0;
			out->state = 0;
			return;
		}
		out->start = *(const __u64 *)(b + o_start);
		out->end = *(const __u64 *)(b + o_end);
		out->flags = *(const __u64 *)(b + o_flags);
		out->pgoff = *(const __u64 *)(b + o_pgoff);
		file = *(struct file *const *)(b + o_file);
	} else {
		file = BPF_CORE_READ(vma, vm_file);
		out->start = BPF_CORE_READ(vma, vm_start);
		out->end = BPF_CORE_READ(vma, vm_end);
		out->flags = BPF_CORE_READ(vma, vm_flags);
		out->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	}
	out->state = VMAT_VMA_VALID;
	if (file)
		vmat_read_vma_file(file, out);
}

/*
 * Special mappings (_install_special_mapping(): [vdso], [vvar], [uprobes])
 * keep their struct vm_special_mapping in vm_private_data, whose first field
 * is the name /proc prints. special_mapping_vmops is not in kallsyms without
 * CONFIG_KALLSYMS_ALL, so recognise the name by its brackets instead.
 */
static __always_inline __u32 vmat_read_special_name(struct vm_area_struct *vma, char *dst,
						    __u32 *state)
{
	struct vm_special_mapping *sm;
	const char *name;
	long n;

	if (!BPF_CORE_READ(vma, vm_ops))
		return 0;
	sm = BPF_CORE_READ(vma, vm_private_data);
	if (!sm)
		return 0;
	name = BPF_CORE_READ(sm, name);
	n = bpf_probe_read_kernel_str(dst, 32, name);
	if (n < 3 || dst[0] != '[' || dst[(n - 2) & 31] != ']')
		return 0;
	*state |= VMAT_VMA_SPECIAL;
	return n;
}

/*
 * Copy the path of vma's file to dst (up to VMAT_PATH_MAX bytes, NUL
 * included) using the scratch buffer at walk_off for the walk. Returns the length copied, 0 when
 * the VMA has no file.
 */
static __always_inline __u32 vmat_read_vma_path(struct vm_area_struct *vma, __u32 walk_off,
						char *dst, __u32 *state)
{
	struct file *file = BPF_CORE_READ(vma, vm_file);
	struct vmat_scratch *s;
	char *tmp;
	__u32 off, len;

	if (!file)
		return vmat_read_special_name(vma, dst, state);
	off = vmat_walk_path(file, walk_off, state);
	s = vmat_scratch();
	if (!s)
		return 0;
	tmp = (char *)s->buf + (walk_off & (VMAT_SCRATCH_SIZE / 2 - 1));
	if (off >= VMAT_PATH_MAX)
		return 0;
	len = VMAT_PATH_MAX - off;
	if (len > VMAT_PATH_MAX)
		return 0;
	bpf_probe_read_kernel(dst, len & (VMAT_PATH_MAX - 1), tmp + (off & (VMAT_PATH_MAX - 1)));
	return len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
