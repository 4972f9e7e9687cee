/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Without CAP_SYS_PTRACE (vmat_ptrace_limit), a followed process is traced
 * only while the tracer may ptrace it. Judged in the kernel where its
 * credentials can change without the frontend seeing it in time: at each
 * exec (process.bpf.c) and at the exit of each set*id, setgroups, capset
 * and prctl (VMAT_CRED_SYSCALLS) of a traced thread (process.bpf.c's
 * tracepoint program, or syscalls.bpf.c's raw sys_exit where tracefs is
 * unusable). Shared by both objects.
 */
#pragma once

#include "common.bpf.h"

/* SUID_DUMP_USER: the only dumpability ptrace_may_access() lets pass without CAP_SYS_PTRACE. */
#define VMAT_SUID_DUMP_USER 1
#define VMAT_MMF_DUMPABLE_MASK 3

/* mm_struct before 6.18, whose flags were one unsigned long. */
struct mm_struct___ulong_flags {
	unsigned long flags;
} __attribute__((preserve_access_index));

/*
 * The mm's flags word: 6.18 made mm->flags an mm_flags_t (a bitmap whose
 * first word holds the same bits), which CO-RE cannot relocate onto 6.1's
 * unsigned long: each kernel's field is read by its own type. Without
 * this, the program that judges does not load on 6.1 at all.
 */
static __always_inline int vmat_read_mm_flags(struct mm_struct *mm, __u64 *flags)
{
	if (bpf_core_type_exists(mm_flags_t))
		return bpf_core_read(flags, sizeof(*flags), &mm->flags);
	return bpf_core_read(flags, sizeof(*flags), &((struct mm_struct___ulong_flags *)mm)->flags);
}

/*
 * What ptrace_may_access(PTRACE_MODE_ATTACH_FSCREDS) would refuse the
 * tracer about task (one thread: credentials are per thread) as its
 * credentials are now (VMAT_REFUSED_* bits; 0: allowed). Yama and LSMs are
 * not judged here (the frontend's /proc/PID/mem check meets them for
 * processes still there). kernel_cap_t is u32[2] on 6.1 and u64 later: the
 * same 8 bytes.
 */
static __always_inline __u32 vmat_ptrace_refusal(struct task_struct *task, __u32 *uid, __u32 *euid)
{
	const struct cred *c = BPF_CORE_READ(task, real_cred);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 caps = 0, mm_flags = 0;
	__u32 why = 0;

	*uid = BPF_CORE_READ(c, uid.val);
	*euid = BPF_CORE_READ(c, euid.val);
	if (*uid != vmat_ptrace_uid || *euid != vmat_ptrace_uid ||
	    BPF_CORE_READ(c, suid.val) != vmat_ptrace_uid)
		why |= VMAT_REFUSED_IDS;
	else if (BPF_CORE_READ(c, gid.val) != vmat_ptrace_gid ||
		 BPF_CORE_READ(c, egid.val) != vmat_ptrace_gid ||
		 BPF_CORE_READ(c, sgid.val) != vmat_ptrace_gid)
		why |= VMAT_REFUSED_GIDS;
	if (mm && !vmat_read_mm_flags(mm, &mm_flags) &&
	    (mm_flags & VMAT_MMF_DUMPABLE_MASK) != VMAT_SUID_DUMP_USER)
		why |= VMAT_REFUSED_DUMPABLE;
	/* In a user namespace of its own the kernel asks about capabilities there: not judged. */
	if (BPF_CORE_READ(c, user_ns, level) == 0 &&
	    !bpf_core_read(&caps, sizeof(caps), &c->cap_permitted) && (caps & ~vmat_ptrace_caps))
		why |= VMAT_REFUSED_CAPS;
	return why;
}

/* Whether nr (an x86-64 syscall number) is a row of VMAT_CRED_SYSCALLS. */
static __always_inline int vmat_is_cred_syscall(long nr)
{
	switch (nr) {
#define VMAT_CRED_CASE(name, x86_64_nr) case x86_64_nr:
		VMAT_CRED_SYSCALLS(VMAT_CRED_CASE)
#undef VMAT_CRED_CASE
		return 1;
	}
	return 0;
}

/*
 * The exit of a credential syscall (nr) by the current thread: a traced
 * process of which this thread may no longer be ptraced leaves the traced
 * set here, whole (its memory is every thread's), before the thread is back
 * in user space, and VMAT_EV_CRED_REFUSED says so. Whatever the syscall
 * (a failed one changed nothing and passes), as the state is judged, not
 * the call. The process's other threads run on meanwhile: what they do
 * between this thread's commit_creds() and this exit is still recorded.
 */
static __always_inline int vmat_judge_cred_exit(long nr)
{
	struct vmat_cred_refused_event r = {};
	struct task_struct *task;
	const struct cred *c;
	__u32 tgid;

	if (!vmat_ptrace_limit)
		return 0;
	tgid = vmat_current_tgid();
	/* Not the command vmatrace starts before its exec (-u changes user there): judged at it. */
	if (!vmat_lookup_traced(tgid))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	r.why = vmat_ptrace_refusal(task, &r.uid, &r.euid);
	if (!r.why)
		return 0;
	bpf_map_delete_elem(&vmat_traced_pids, &tgid);
	c = BPF_CORE_READ(task, real_cred);
	r.gid = BPF_CORE_READ(c, gid.val);
	r.egid = BPF_CORE_READ(c, egid.val);
	r.nr = nr;
	vmat_fill_hdr(&r.hdr, VMAT_EV_CRED_REFUSED, sizeof(r));
	vmat_output(&r, sizeof(r), tgid);
	return 0;
}
