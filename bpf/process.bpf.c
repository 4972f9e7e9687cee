/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Process lifecycle from the sched raw tracepoints (no tracefs needed):
 * fork/clone (following children into the traced set), exec, exit (dropping
 * the process from the traced set, so the maps never keep dead entries).
 */
#include "common.bpf.h"
#include "ptrace.bpf.h"

/* Deeper cgroup v2 trees than this are not searched for --cgroup. */
#define VMAT_CGROUP_MAX_DEPTH 32

/*
 * Whether task is in the --cgroup cgroup or one of its descendants (its
 * cgroup v2 one: css_set.dfl_cgrp, then up through the parents; a cgroup's
 * css `self` is its first member, so a parent css is its cgroup). Runs only
 * at fork, exec and cgroup moves, never per memory event.
 */
static __always_inline int vmat_in_traced_cgroup(struct task_struct *task)
{
	struct cgroup *cg;

	if (!vmat_cgroup_id)
		return 0;
	cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	for (int i = 0; i < VMAT_CGROUP_MAX_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == vmat_cgroup_id)
			return 1;
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return 0;
}

/*
 * A process that joined what is traced (--cgroup, --comm): followed from
 * here, children included (the frontend reads its layout).
 */
static __always_inline void vmat_trace_joiner(__u32 tgid)
{
	struct vmat_traced nt = {.follow = 1};

	vmat_traced_bit_set(tgid);
	bpf_map_update_elem(&vmat_traced_pids, &tgid, &nt, BPF_NOEXIST);
}

/* Whether task's name (set by the exec, before this tracepoint) is --comm's. */
static __always_inline int vmat_comm_wanted(struct task_struct *task)
{
	char comm[VMAT_COMM_LEN];

	if (!vmat_comm_filter[0])
		return 0;
	if (bpf_probe_read_kernel(comm, sizeof(comm), &task->comm))
		return 0;
	for (int i = 0; i < VMAT_COMM_LEN; i++) {
		if (comm[i] != vmat_comm_filter[i])
			return 0;
		if (!comm[i])
			return 1;
	}
	return 1;
}

/*
 * A new traced task in a PID namespace below the initial one: its ids
 * there (pid->numbers[pid->level], as task_pid_vnr() in its own namespace
 * reads them), before its fork record, so the frontend need not find it
 * in /proc (a short-lived child is gone by then).
 */
static __always_inline void vmat_emit_ns_ids(struct task_struct *child, __u32 ctgid, __u32 ctid)
{
	struct pid *tpid = BPF_CORE_READ(child, thread_pid);
	struct pid *gpid = BPF_CORE_READ(child, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(tpid, level);
	struct vmat_ns_ids_event e = {};
	struct upid up;

	if (level == 0 || level > 32)
		return;
	if (bpf_core_read(&up, sizeof(up), &tpid->numbers[level]))
		return;
	e.nstid = up.nr;
	if (bpf_core_read(&up, sizeof(up), &gpid->numbers[level]))
		return;
	e.nspid = up.nr;
	vmat_fill_hdr(&e.hdr, VMAT_EV_NS_IDS, sizeof(e));
	e.hdr.pid = ctgid;
	e.hdr.tid = ctid;
	vmat_output(&e, sizeof(e), ctgid);
}

SEC("raw_tp/sched_process_fork")
int process_fork_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct vmat_traced *t = vmat_lookup_traced(ptgid);
	struct vmat_fork_event e = {};

	if (!t) {
		/* The child's cgroup: with CLONE_INTO_CGROUP, not the parent's. */
		if (ctgid != ptgid && vmat_in_traced_cgroup(child))
			vmat_trace_joiner(ctgid);
		return 0;
	}
	if (ctgid == ptgid) {
		e.flags |= VMAT_FORK_THREAD;
	} else {
		if (BPF_CORE_READ(child, mm) == BPF_CORE_READ(parent, mm))
			e.flags |= VMAT_FORK_SHARED_VM;
		if (t->follow) {
			struct vmat_traced nt = {.follow = 1};

			vmat_traced_bit_set(ctgid);
			if (!bpf_map_update_elem(&vmat_traced_pids, &ctgid, &nt, BPF_ANY))
				e.flags |= VMAT_FORK_TRACED;
		}
	}
	e.child_pid = ctgid;
	e.child_tid = BPF_CORE_READ(child, pid);
	if ((e.flags & (VMAT_FORK_THREAD | VMAT_FORK_TRACED)))
		vmat_emit_ns_ids(child, ctgid, e.child_tid);
	vmat_fill_hdr(&e.hdr, VMAT_EV_FORK, sizeof(e));
	vmat_output(&e, sizeof(e), ptgid);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int process_exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct vmat_exec_event *e;
	struct vmat_scratch *s;
	struct vmat_traced *t;
	const char *filename;
	long n;

	t = vmat_lookup_traced_any(tgid);
	if (!t && vmat_comm_wanted(task)) {
		/* --comm: traced from this exec (the exec walk, attached after us, sees it). */
		vmat_trace_joiner(tgid);
		t = vmat_lookup_traced_any(tgid);
	}
	if (!t)
		return 0;
	if (vmat_ptrace_limit) {
		struct vmat_exec_refused_event r = {};

		r.why = vmat_ptrace_refusal(task, &r.uid, &r.euid);
		if (r.why) {
			/* Nothing of it from here on: not its exec record, nor its children. */
			bpf_map_delete_elem(&vmat_traced_pids, &tgid);
			vmat_fill_hdr(&r.hdr, VMAT_EV_EXEC_REFUSED, sizeof(r));
			__builtin_memset(r.hdr.comm, 0, sizeof(r.hdr.comm));
			vmat_output(&r, sizeof(r), tgid);
			return 0;
		}
	}
	/* The command vmatrace spawned (wait_exec) is stopped by ptrace instead. */
	if (vmat_stop_on_exec && !t->wait_exec)
		bpf_send_signal(19 /* SIGSTOP */);
	t->wait_exec = 0;
	s = vmat_scratch();
	if (!s)
		return 0;
	e = (void *)s->buf;
	__builtin_memset(e, 0, sizeof(*e));
	e->old_tid = ctx->args[1];
	e->start_brk = BPF_CORE_READ(task, mm, start_brk);
	e->brk = BPF_CORE_READ(task, mm, brk);
	e->start_stack = BPF_CORE_READ(task, mm, start_stack);
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str((char *)s->buf + sizeof(*e), VMAT_PATH_MAX, filename);
	if (n < 0)
		n = 0;
	e->filename_len = n;
	n &= VMAT_PATH_MAX - 1;
	vmat_fill_hdr(&e->hdr, VMAT_EV_EXEC, sizeof(*e) + n);
	vmat_output(e, sizeof(*e) + n, tgid);
	return 0;
}

/*
 * Without CAP_SYS_PTRACE: the exit of a credential syscall (VMAT_CRED_SYSCALLS;
 * the loader attaches this to each sys_exit_<name> tracepoint) is judged
 * again (ptrace.bpf.h). Where tracefs is unusable, syscalls_exit_raw does it.
 */
SEC("tracepoint")
int process_cred_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	/* syscalls:sys_exit_* records hold an int nr where raw_syscalls' hold a long id. */
	return vmat_judge_cred_exit((int)ctx->id);
}

SEC("raw_tp/sched_process_exit")
int process_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct vmat_exit_event e = {};
	struct vmat_traced *t;
	__u64 *lost;
	long err;

	t = vmat_lookup_traced_any(tgid);
	if (!t)
		return 0;
	e.exit_code = BPF_CORE_READ(task, exit_code);
	/* group_dead as do_exit() computes it; 6.1's tracepoint lacks the arg. */
	if (BPF_CORE_READ(task, signal, live.counter) == 0) {
		e.flags |= VMAT_EXIT_GROUP;
		lost = bpf_map_lookup_elem(&vmat_lost, &tgid);
		if (lost)
			e.lost = *lost;
	}
	/*
	 * --rss: the counters as they were before exit_mmap() (whose unmapping
	 * is not counted), before the exit record.
	 */
	if ((e.flags & VMAT_EXIT_GROUP) && t->rss.mm)
		vmat_rss_emit(tgid, 0, 0, VMAT_RSS_STAT_BASE, 0, &t->rss);
	vmat_fill_hdr(&e.hdr, VMAT_EV_EXIT, sizeof(e));
	err = vmat_output(&e, sizeof(e), tgid);
	if (e.flags & VMAT_EXIT_GROUP) {
		bpf_map_delete_elem(&vmat_traced_pids, &tgid);
		vmat_traced_bit_clear(tgid);
		/*
		 * When the exit record itself was lost, its count (that loss
		 * included) stays for the frontend, which reports it and then
		 * deletes the entry (BpfTracer::forget_lost).
		 */
		if (!err)
			bpf_map_delete_elem(&vmat_lost, &tgid);
	}
	return 0;
}

/*
 * --cgroup: a process moved into the cgroup or one of its descendants
 * (cgroup.procs) is traced from its move. cgroup_attach_task() fires this
 * after the migration, so the task's css_set already names the new cgroup.
 * Loaded only with --cgroup.
 */
SEC("raw_tp/cgroup_attach_task")
int process_cgroup_attach_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[2];

	if (vmat_in_traced_cgroup(task))
		vmat_trace_joiner(BPF_CORE_READ(task, tgid));
	return 0;
}
