/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mmap, munmap, brk, mremap, mprotect, madvise, and the other syscalls that
 * change VMAs (mlock, munlock, mlock2, mlockall, munlockall, pkey_mprotect,
 * shmat, shmdt): arguments saved at entry, joined at exit with the result
 * and with the kernel's VMA(s) at the affected addresses (bpf_find_vma),
 * emitted as one vmat_syscall_event.
 *
 * Four flavours, best first; the loader picks one (features.cpp probes):
 *  - *_fexit: fexit on the x86-64 syscall entry points (__x64_sys_mmap, ...).
 *    Arguments (from the pt_regs the wrapper gets) and result in one program:
 *    no in-flight map. Needs BPF trampolines (5.5+) that this kernel allows.
 *  - *_kprobe + syscalls_kretprobe: the same functions through kprobes, joined
 *    by the in-flight map. Needs CONFIG_KPROBES.
 *  - *_tp: one tracepoint per syscall (syscalls:sys_enter_mmap, ...). Only
 *    the traced syscalls pay; needs tracefs for the tracepoint ids.
 *  - *_raw: raw_syscalls sys_enter/sys_exit raw tracepoints. No tracefs,
 *    but every syscall of every process runs the filter; x86-64 numbers.
 * All four emit the same vmat_syscall_event through vmat_emit_syscall().
 * The programs of each flavour are stamped out per row of VMAT_SYSCALLS
 * (include/vmatrace/abi/syscalls.h); the loader finds them by their names
 * (<name>_fexit, <name>_kprobe, <name>_enter_tp).
 * The first six exist on every kernel; the others may not (no
 * CONFIG_SYSVIPC: no shmat/shmdt), so the loader leaves out the programs
 * and attachments of those the kernel lacks (features.cpp looks each up).
 */
#include "common.bpf.h"
#include "mman.bpf.h"
#include "inflight.bpf.h"
#include "ptrace.bpf.h"

/*
 * One record in the per-CPU scratch buffer: the event at 0 (a
 * vmat_syscall_stores_event, whose first part is the vmat_syscall_event),
 * the stores it carries after it, then the path. A syscall without stores
 * is written as the plain vmat_syscall_event with the path right after it.
 */
#define SCRATCH_EVENT 0
#define SCRATCH_STORES sizeof(struct vmat_syscall_stores_event)

static __always_inline __u32 scratch_path_off(__u32 nstores)
{
	return nstores ? sizeof(struct vmat_syscall_stores_event) +
				 nstores * sizeof(struct vmat_vma_store)
		       : sizeof(struct vmat_syscall_event);
}

struct find_ctx {
	__u32 slot;
	__u32 path_len;
	__u32 path_off; /* where in the scratch buffer the path goes */
};

static long on_vma(struct task_struct *task, struct vm_area_struct *vma, struct find_ctx *c)
{
	struct vmat_scratch *s = vmat_scratch();
	struct vmat_syscall_event *e;
	__u32 slot = c->slot & 1;

	if (!s)
		return 0;
	e = (void *)s->buf + SCRATCH_EVENT;
	vmat_read_vma(vma, &e->vma[slot]);
	if (slot == 0)
		c->path_len =
			vmat_read_vma_path(vma, VMAT_SCRATCH_WALK,
					   (char *)s->buf + (c->path_off & 1023), &e->vma[0].state);
	return 0;
}

static __always_inline void find_vma_into(struct task_struct *task, __u64 addr, struct find_ctx *c)
{
	bpf_find_vma(task, addr, on_vma, c, 0);
}

static __always_inline int sys_enter(__u32 sys, __u64 a0, __u64 a1, __u64 a2, __u64 a3, __u64 a4,
				     __u64 a5)
{
	struct vmat_inflight *in;

	if (!vmat_lookup_traced(vmat_current_tgid()))
		return 0;
	in = bpf_task_storage_get(&vmat_inflight, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return 0;
	in->sys = sys;
	in->nstores = 0;
	in->ts = bpf_ktime_get_ns();
	in->args.v[0] = a0;
	in->args.v[1] = a1;
	in->args.v[2] = a2;
	in->args.v[3] = a3;
	in->args.v[4] = a4;
	in->args.v[5] = a5;
	return 0;
}

__noinline int vmat_emit_user_stack(__u32 sys, const struct vmat_sys_args *a, __u64 enter_ts,
				    long ret);

/* The table's x86_64_nr column: a raw_syscalls number to its vmat_sys id, 0 if untraced. */
static __always_inline __u32 x86_64_sys(long nr)
{
	switch (nr) {
#define VMAT_X86_64_CASE(name, NAME, id, x86_64_nr, ...) \
	case x86_64_nr:                                  \
		return VMAT_SYS_##NAME;
		VMAT_SYSCALLS(VMAT_X86_64_CASE)
#undef VMAT_X86_64_CASE
	}
	return 0;
}

/* The table's nargs column. */
static __always_inline int sys_nargs(__u32 sys)
{
	switch (sys) {
#define VMAT_NARGS_CASE(name, NAME, id, x86_64_nr, nargs, ...) \
	case VMAT_SYS_##NAME:                                  \
		return nargs;
		VMAT_SYSCALLS(VMAT_NARGS_CASE)
#undef VMAT_NARGS_CASE
	}
	return 0;
}

/* The table's range column: where the VMA(s) a call of `sys` results in are. */
static __always_inline __u32 sys_range(__u32 sys)
{
	switch (sys) {
#define VMAT_RANGE_CASE(name, NAME, id, x86_64_nr, nargs, required, ret, range, ...) \
	case VMAT_SYS_##NAME:                                                        \
		return range;
		VMAT_SYSCALLS(VMAT_RANGE_CASE)
#undef VMAT_RANGE_CASE
	}
	return VMAT_RANGE_NONE;
}

/*
 * The exit half every flavour shares: one record from the syscall id, its
 * arguments, the entry time and the result, joined with the mm's break and
 * the VMA(s) the call produced. The caller has already filtered the process.
 *
 * A global (non-static, noinline) function: the verifier checks it once,
 * on its own, instead of once per path of its caller through an inlined
 * copy. Inlined into the shared exit program (twice: seen and unseen
 * entries) together with the user stack copy, it made that one program
 * about 393,000 verified instructions and ~0.6 s of CPU at every start.
 */
__noinline int vmat_emit_syscall(__u32 sys, const struct vmat_sys_args *a, __u64 enter_ts, long ret,
				 __u32 nstores)
{
	__u32 tgid = vmat_current_tgid();
	const __u64 *args;
	struct vmat_scratch *s;
	struct vmat_syscall_event *e;
	struct task_struct *task;
	struct find_ctx c = {};
	__u64 lo = 0, hi = 0;
	__u32 size, range, path_off;

	if (!a)
		return 0;
	if (nstores > VMAT_SYSCALL_STORES_MAX)
		nstores = 0;
	path_off = scratch_path_off(nstores);
	c.path_off = path_off;
	args = a->v;
	s = vmat_scratch();
	if (!s)
		return 0;
	e = (void *)s->buf + SCRATCH_EVENT;
	__builtin_memset(e, 0, sizeof(*e));
	e->sys = sys;
	e->ret = ret;
	e->enter_ts = enter_ts;
	for (int i = 0; i < 6; i++)
		e->args[i] = args[i];

	/* Plain loads through the BTF task pointer: no probe-read calls. */
	task = bpf_get_current_task_btf();
	e->start_brk = task->mm->start_brk;
	e->brk = task->mm->brk;

	range = sys_range(sys);
	switch (range) {
	case VMAT_RANGE_RET_LEN1:
	case VMAT_RANGE_RET_LEN2:
		if (!VMAT_IS_ERR(ret)) {
			lo = (__u64)ret;
			hi = lo + (range == VMAT_RANGE_RET_LEN1 ? args[1] : args[2]) - 1;
		}
		break;
	case VMAT_RANGE_RET:
		/* The segment's size is not an argument: vma[0] tells it. */
		if (!VMAT_IS_ERR(ret))
			lo = hi = (__u64)ret;
		break;
	case VMAT_RANGE_ARG0_LEN1:
		/* do_mlock() rounds start down to its page; the others require it aligned. */
		if (ret == 0 && args[1]) {
			lo = args[0] & PAGE_MASK;
			hi = args[0] + args[1] - 1;
		}
		break;
	case VMAT_RANGE_BRK:
		if (e->brk > e->start_brk)
			lo = hi = e->brk - 1;
		break;
	}
	if (lo) {
		c.slot = 0;
		find_vma_into(task, lo, &c);
		if (hi > lo && !(e->vma[0].state && hi < e->vma[0].end)) {
			c.slot = 1;
			find_vma_into(task, hi, &c);
		}
	}
	if (c.path_len > VMAT_PATH_MAX)
		c.path_len = 0;
	e->path_len = c.path_len;
	size = path_off + c.path_len;
	/*
	 * A bound the verifier can follow: clang proves the clamps above and
	 * drops a mask it knows to be a no-op, and the verifier loses them.
	 */
	barrier_var(size);
	size &= VMAT_SCRATCH_WALK - 1;
	vmat_fill_hdr(&e->hdr, nstores ? VMAT_EV_SYSCALL_STORES : VMAT_EV_SYSCALL, size);
	vmat_output(e, size, tgid);
	vmat_emit_user_stack(sys, a, enter_ts, ret);
	return 0;
}

/* ---- malloc attribution: user registers and stack at growth syscalls -- */

/*
 * Bytes of user stack to copy at a growth syscall; 0 (the default) turns
 * the capture off, and the verifier then drops the code below as dead.
 */
const volatile __u32 vmat_ustack_bytes = 0;
/*
 * Smallest anonymous mmap worth a stack: an allocator maps a chunk only at
 * or above its threshold (glibc: M_MMAP_THRESHOLD, 128 KiB unless tuned
 * down), so a storm of small direct mmaps pays nothing.
 */
const volatile __u64 vmat_ustack_min_mmap = 0;

struct vmat_ustack_scratch {
	__u8 buf[sizeof(struct vmat_user_stack_event) + VMAT_USTACK_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmat_ustack_scratch);
} vmat_ustack_map SEC(".maps");

/* Whether a successful call can have grown memory (the frontend decides by how much). */
static __always_inline bool is_growth(__u32 sys, const __u64 *args, long ret)
{
	if (VMAT_IS_ERR(ret))
		return false;
	switch (sys) {
	case VMAT_SYS_BRK:
		return args[0] != 0; /* brk(0) only asks */
	case VMAT_SYS_MMAP:
		/* MAP_ANONYMOUS: allocators never map files; PROT_NONE is a
		 * reservation (a glibc arena's heap), it grows by mprotect. */
		return (args[3] & MAP_ANONYMOUS) && args[2] != PROT_NONE &&
		       args[1] >= vmat_ustack_min_mmap;
	case VMAT_SYS_MREMAP:
		return args[2] > args[1];
	case VMAT_SYS_MPROTECT:
		return args[2] & PROT_WRITE; /* a glibc arena heap growing into its reserve */
	}
	return false;
}

struct ustack_end_ctx {
	__u64 sp;
	__u64 end;
};

static long on_stack_vma(struct task_struct *task, struct vm_area_struct *vma,
			 struct ustack_end_ctx *c)
{
	c->end = BPF_CORE_READ(vma, vm_end);
	return 0;
}

/*
 * The user registers come from the task's saved pt_regs (bpf_task_pt_regs,
 * 5.15+), which every flavour can read: the syscall entry saved them all.
 * The copy is clamped to the end of the VMA holding sp, so a short stack
 * (the main thread near its top) still reads.
 */
__noinline int vmat_emit_user_stack(__u32 sys, const struct vmat_sys_args *a, __u64 enter_ts,
				    long ret)
{
	struct vmat_user_stack_event *e;
	struct ustack_end_ctx c = {};
	struct task_struct *task;
	struct pt_regs *regs;
	__u32 zero = 0, len, size;
	bool copied = false;
	void *buf;

	if (!a || !vmat_ustack_bytes || !is_growth(sys, a->v, ret))
		return 0;
	buf = bpf_map_lookup_elem(&vmat_ustack_map, &zero);
	if (!buf)
		return 0;
	e = buf;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	e->enter_ts = enter_ts;
	e->sys = sys;
	e->regs[0] = BPF_CORE_READ(regs, ax);
	e->regs[1] = BPF_CORE_READ(regs, dx);
	e->regs[2] = BPF_CORE_READ(regs, cx);
	e->regs[3] = BPF_CORE_READ(regs, bx);
	e->regs[4] = BPF_CORE_READ(regs, si);
	e->regs[5] = BPF_CORE_READ(regs, di);
	e->regs[6] = BPF_CORE_READ(regs, bp);
	e->regs[7] = BPF_CORE_READ(regs, sp);
	e->regs[8] = BPF_CORE_READ(regs, r8);
	e->regs[9] = BPF_CORE_READ(regs, r9);
	e->regs[10] = BPF_CORE_READ(regs, r10);
	e->regs[11] = BPF_CORE_READ(regs, r11);
	e->regs[12] = BPF_CORE_READ(regs, r12);
	e->regs[13] = BPF_CORE_READ(regs, r13);
	e->regs[14] = BPF_CORE_READ(regs, r14);
	e->regs[15] = BPF_CORE_READ(regs, r15);
	e->regs[16] = BPF_CORE_READ(regs, ip);
	c.sp = e->regs[7];
	bpf_find_vma(task, c.sp, on_stack_vma, &c, 0);
	len = vmat_ustack_bytes;
	if (c.end > c.sp && c.end - c.sp < len)
		len = c.end - c.sp;
	if (len > VMAT_USTACK_MAX)
		len = VMAT_USTACK_MAX;
	len &= ~7u;
	/* The VMA end bounds the copy; should the lookup fail, halve until it reads. */
	for (int i = 0; i < 6; i++) {
		if (!bpf_probe_read_user(buf + sizeof(*e), len, (void *)c.sp)) {
			copied = true;
			break;
		}
		len = (len >> 1) & ~7u;
	}
	/* Nothing read: no bytes, rather than zeros the unwinder would take for a stack. */
	e->stack_len = copied ? len : 0;
	len = e->stack_len;
	size = sizeof(*e) + len;
	vmat_fill_hdr(&e->hdr, VMAT_EV_USER_STACK, size);
	if (size > sizeof(struct vmat_ustack_scratch))
		return 0;
	vmat_output(e, size, vmat_current_tgid());
	return 0;
}

/*
 * The x86-64 syscall ABI's argument registers, in order (di, si, dx, r10,
 * r8, r9: arch/x86/entry/entry_64.S), as saved in the pt_regs that every
 * __x64_sys_* wrapper receives since 4.17 (CONFIG_ARCH_HAS_SYSCALL_WRAPPER).
 * Arguments a syscall does not have stay 0, as in the tracepoint flavour.
 */
static __always_inline void regs_args(const struct pt_regs *regs, int nargs, __u64 *a)
{
	if (nargs > 0)
		a[0] = BPF_CORE_READ(regs, di);
	if (nargs > 1)
		a[1] = BPF_CORE_READ(regs, si);
	if (nargs > 2)
		a[2] = BPF_CORE_READ(regs, dx);
	if (nargs > 3)
		a[3] = BPF_CORE_READ(regs, r10);
	if (nargs > 4)
		a[4] = BPF_CORE_READ(regs, r8);
	if (nargs > 5)
		a[5] = BPF_CORE_READ(regs, r9);
}

/*
 * The exit of a syscall whose entry was not saved: it entered before its
 * process was traced (in flight at an attach, -p), or its thread's
 * in-flight storage was busy or could not be allocated. Its change may
 * come after the layout vmatrace read at the attach, so it must not be
 * lost. The arguments are still where the entry saved them: the syscall
 * path does not write di, si, dx, r10, r8, r9 of the task's pt_regs, and
 * orig_ax keeps the number (arch/x86/entry/common.c). enter_ts 0: the
 * entry time is unknown.
 *
 * -ENOSYS is what the entry path put in ax before the syscall ran: every
 * syscall in the table exists on x86_64, so it returns -ENOSYS only when the
 * syscall never ran (a ptrace entry stop that ended in a fatal signal, e.g.
 * a thread at strace's entry stop when a sibling called exit_group, or a
 * seccomp skip). Those exits come without a sys_enter and changed nothing.
 */
static __always_inline int sys_exit_unseen(long ret)
{
	struct pt_regs *regs;
	struct vmat_sys_args a = {};
	__u32 sys;

	if (ret == -38 /* -ENOSYS */)
		return 0;
	if (!vmat_lookup_traced(vmat_current_tgid()))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	sys = x86_64_sys(BPF_CORE_READ(regs, orig_ax));
	if (!sys)
		return 0;
	regs_args(regs, sys_nargs(sys), a.v);
	return vmat_emit_syscall(sys, &a, 0, ret, 0);
}

/*
 * The VMA-tree stores the vma family kept with the in-flight syscall
 * (bpf/vma.bpf.c), copied into the scratch buffer behind the event they
 * ride with; their count (0: a plain syscall record).
 */
static __always_inline __u32 carry_stores(struct vmat_inflight *in)
{
	struct vmat_syscall_stores_event *x;
	struct vmat_scratch *s;
	__u32 n = in->nstores;

	in->nstores = 0;
	if (!n)
		return 0;
	s = vmat_scratch();
	if (!s)
		return 0;
	if (n > VMAT_SYSCALL_STORES_MAX)
		n = VMAT_SYSCALL_STORES_MAX;
	for (__u32 i = 0; i < VMAT_SYSCALL_STORES_MAX; i++) {
		if (i >= n)
			break;
		__builtin_memcpy((void *)s->buf + SCRATCH_STORES +
					 i * sizeof(struct vmat_vma_store),
				 &in->stores[i], sizeof(struct vmat_vma_store));
	}
	x = (void *)s->buf + SCRATCH_EVENT;
	x->nstores = n;
	x->source = in->store_source;
	return n;
}

/* Exit of the flavours that saved the entry in vmat_inflight (tp, raw, kprobe). */
static __always_inline int sys_exit(long ret)
{
	struct vmat_inflight *in;
	struct vmat_sys_args a;
	__u64 ts;
	__u32 sys;

	/* Before the storage lookup: every process's exits come here. */
	if (!vmat_maybe_traced(vmat_current_tgid()))
		return 0;
	in = bpf_task_storage_get(&vmat_inflight, bpf_get_current_task_btf(), 0, 0);
	if (!in || !in->sys)
		return sys_exit_unseen(ret);
	/* A copy on the stack: what a global function may be handed. */
	a = in->args;
	ts = in->ts;
	sys = in->sys;
	in->sys = 0; /* consumed: later stores are not this syscall's */
	return vmat_emit_syscall(sys, &a, ts, ret, carry_stores(in));
}

/* ---- flavour 1: fexit on the syscall entry points --------------------- */

/*
 * One program per syscall: a trampoline program is verified against its
 * target's BTF prototype (attach_btf_id), so one cannot serve several targets.
 * No fentry half: the entry time would need the in-flight map again, so
 * enter_ts is the exit time and duration_ns shows only our own work.
 */
#define VMAT_SYSCALL_FEXIT(name, sys, nargs)                                   \
	SEC("fexit/__x64_sys_" #name)                                          \
	int BPF_PROG(name##_fexit, const struct pt_regs *regs, long ret)       \
	{                                                                      \
		struct vmat_sys_args a = {};                                   \
                                                                               \
		if (!vmat_lookup_traced(vmat_current_tgid()))                  \
			return 0;                                              \
		regs_args(regs, nargs, a.v);                                   \
		return vmat_emit_syscall(sys, &a, bpf_ktime_get_ns(), ret, 0); \
	}

#define VMAT_FEXIT_ROW(name, NAME, id, x86_64_nr, nargs, ...) \
	VMAT_SYSCALL_FEXIT(name, VMAT_SYS_##NAME, nargs)
VMAT_SYSCALLS(VMAT_FEXIT_ROW)
#undef VMAT_FEXIT_ROW

/* ---- flavour 2: kprobes on the same functions ------------------------- */

#define VMAT_SYSCALL_KPROBE(name, sys, nargs)                              \
	SEC("kprobe/__x64_sys_" #name)                                     \
	int BPF_KPROBE(name##_kprobe, const struct pt_regs *regs)          \
	{                                                                  \
		__u64 a[6] = {};                                           \
                                                                           \
		regs_args(regs, nargs, a);                                 \
		return sys_enter(sys, a[0], a[1], a[2], a[3], a[4], a[5]); \
	}

#define VMAT_KPROBE_ROW(name, NAME, id, x86_64_nr, nargs, ...) \
	VMAT_SYSCALL_KPROBE(name, VMAT_SYS_##NAME, nargs)
VMAT_SYSCALLS(VMAT_KPROBE_ROW)
#undef VMAT_KPROBE_ROW

/*
 * The return half needs only the result (the rest is in vmat_inflight), so
 * as with syscalls_exit_tp one program serves them all: the loader attaches
 * it as a kretprobe to each function (one verification, not one each).
 */
SEC("kretprobe")
int BPF_KRETPROBE(syscalls_kretprobe, long ret)
{
	return sys_exit(ret);
}

/* ---- flavour 3: per-syscall tracepoints ------------------------------ */

/*
 * The kernel refuses to attach a program that reads past a tracepoint's
 * record (EACCES from perf_event_attach_bpf_prog's max_ctx_offset check),
 * so each syscall reads only the arguments it has (munlockall: none).
 */
#define ARG(n) (nargs > (n) ? ctx->args[n] : 0)
#define VMAT_SYSCALL_ENTER_TP(name, sys, nargs_)                                       \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                    \
	int name##_enter_tp(struct trace_event_raw_sys_enter *ctx)                     \
	{                                                                              \
		const int nargs = nargs_;                                              \
		return sys_enter(sys, ARG(0), ARG(1), ARG(2), ARG(3), ARG(4), ARG(5)); \
	}

#define VMAT_ENTER_TP_ROW(name, NAME, id, x86_64_nr, nargs, ...) \
	VMAT_SYSCALL_ENTER_TP(name, VMAT_SYS_##NAME, nargs)
VMAT_SYSCALLS(VMAT_ENTER_TP_ROW)
#undef VMAT_ENTER_TP_ROW
#undef ARG

/*
 * Every sys_exit_* record has the same layout (syscall nr, ret), so one
 * program serves every exit: the loader attaches it to each. That is
 * one verification of the exit path instead of one per syscall (load time).
 */
SEC("tracepoint")
int syscalls_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx->ret);
}

/* ---- flavour 4: raw_syscalls, no tracefs needed (x86-64 numbers) ------ */

SEC("raw_tp/sys_enter")
int syscalls_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 sys = x86_64_sys(ctx->args[1]);

	if (!sys || !vmat_maybe_traced(vmat_current_tgid()))
		return 0;
	return sys_enter(sys, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si),
			 BPF_CORE_READ(regs, dx), BPF_CORE_READ(regs, r10), BPF_CORE_READ(regs, r8),
			 BPF_CORE_READ(regs, r9));
}

SEC("raw_tp/sys_exit")
int syscalls_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = BPF_CORE_READ(regs, orig_ax);

	if (!vmat_maybe_traced(vmat_current_tgid()))
		return 0;
	if (!x86_64_sys(nr)) {
		/* No tracefs, so no process_cred_exit_tp: credential changes are judged here. */
		if (vmat_ptrace_limit && vmat_is_cred_syscall(nr))
			return vmat_judge_cred_exit(nr);
		return 0;
	}
	return sys_exit(ctx->args[1]);
}
