/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one contract between vmatrace's BPF programs and its C++ frontend,
 * and the payload of every record in a recording.
 *
 * Rules (see tests/unit/abi_layout_test.cpp, which fails on any change):
 *  - fixed-width types only, natural alignment, explicit padding, no packing;
 *  - every record starts with struct vmat_hdr;
 *  - record type ids are explicit and never reused; a changed layout gets a
 *    new id and VMAT_ABI_VERSION is bumped;
 *  - ids below VMAT_REC_USER_BASE come from BPF, ids at or above it are
 *    synthesised by the frontend (layout seeds, loss notes) and only live in
 *    the record stream.
 */
#ifndef VMATRACE_ABI_EVENTS_H
#define VMATRACE_ABI_EVENTS_H

#ifdef __bpf__
/* BPF gets its types from vmlinux.h, included before this header. */
#else
#include <linux/types.h>
#endif

#define VMAT_ABI_VERSION 1

#define VMAT_COMM_LEN 16
#define VMAT_PATH_MAX 4096

enum vmat_record_type {
	VMAT_EV_SYSCALL = 1,	  /* struct vmat_syscall_event (+ path) */
	VMAT_EV_FAULT = 2,	  /* struct vmat_fault_event */
	VMAT_EV_FORK = 3,	  /* struct vmat_fork_event */
	VMAT_EV_EXEC = 4,	  /* struct vmat_exec_event (+ filename) */
	VMAT_EV_EXIT = 5,	  /* struct vmat_exit_event */
	VMAT_EV_VMA_SNAPSHOT = 6, /* struct vmat_vma_snapshot_event (+ path) */
	VMAT_EV_FS = 7,		  /* struct vmat_fs_event */
	VMAT_EV_USER_STACK = 8,	  /* struct vmat_user_stack_event (+ stack bytes) */
	VMAT_EV_VMA_KERNEL = 10,  /* struct vmat_vma_kernel_event */
	VMAT_EV_NS_IDS = 11,	  /* struct vmat_ns_ids_event */
	/* struct vmat_syscall_stores_event (+ its stores, + path) */
	VMAT_EV_SYSCALL_STORES = 12,
	VMAT_EV_RSS_STAT = 13, /* struct vmat_rss_stat_event */
	/* struct vmat_exec_refused_event: not followed past this exec */
	VMAT_EV_EXEC_REFUSED = 14,
	/* struct vmat_cred_refused_event: not followed past this set*id/capset/prctl */
	VMAT_EV_CRED_REFUSED = 15,

	VMAT_REC_USER_BASE = 0x8000,
	VMAT_REC_LAYOUT = 0x8001,	/* frontend: a full layout of one process */
	VMAT_REC_LOSS = 0x8002,		/* frontend: kernel reported lost events */
	VMAT_REC_NOTE = 0x8003,		/* frontend: free text note (attach, detach) */
	VMAT_REC_FILE_DELETED = 0x8004, /* frontend: a mapped file was unlinked */
	VMAT_REC_NS_IDS = 0x8005,	/* frontend: a thread's pid/tid in its own PID namespace */
	VMAT_REC_RSS = 0x8006,		/* frontend: struct vmat_rss_scan (+ ranges, runs) */
	VMAT_REC_STACK_FRAMES = 0x8007, /* frontend: struct vmat_ustack_frames (+ pcs) */
	VMAT_REC_JIT_MAP = 0x8008,	/* frontend: struct vmat_jit_map (+ entries) */
	VMAT_REC_HOST_PATH = 0x8009,	/* frontend: a mapped file's path on the host */
};

/* enum vmat_sys: the table of traced syscalls. */
#include "syscalls.h"

struct vmat_hdr {
	__u32 type; /* enum vmat_record_type */
	__u32 size; /* whole record, header and trailing bytes included */
	__u64 ts;   /* CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
	__u32 pid;  /* thread group id */
	__u32 tid;
	char comm[VMAT_COMM_LEN];
};

/* vmat_vma_info.state */
#define VMAT_VMA_VALID (1u << 0)      /* the kernel had a VMA there */
#define VMAT_VMA_FILE (1u << 1)	      /* file-backed */
#define VMAT_VMA_DELETED (1u << 2)    /* file is unlinked: " (deleted)" */
#define VMAT_VMA_PATH_TRUNC (1u << 3) /* path walk gave up (too deep) */
#define VMAT_VMA_SPECIAL (1u << 4)    /* kernel special mapping; the path is its name ("[vdso]") */

/* One VMA as the kernel held it at the time of the event. */
struct vmat_vma_info {
	__u64 start;
	__u64 end;
	__u64 flags; /* vm_flags, kernel VM_* bits */
	__u64 pgoff; /* in pages */
	__u64 ino;
	__u32 dev;   /* kernel dev_t: major << 20 | minor */
	__u32 state; /* VMAT_VMA_* */
};

/*
 * An mm syscall: entry arguments joined with the exit result. vma[0] is the
 * kernel's VMA at the result address (mmap, mremap, shmat), at args[0]
 * (mprotect, madvise, pkey_mprotect, mlock, munlock, mlock2) or below the
 * new break (brk); vma[1] is the VMA at the last byte of the affected range
 * when it differs (shmat: none, its size is not an argument). mlockall,
 * munlockall and shmdt carry no VMA. The path of vma[0]'s file, when it
 * has one, follows the struct (path_len bytes, NUL included).
 */
struct vmat_syscall_event {
	struct vmat_hdr hdr;
	__u32 sys; /* enum vmat_sys */
	__u32 path_len;
	__s64 ret; /* raw return value: -errno on failure */
	__u64 args[6];
	__u64 enter_ts;
	__u64 start_brk; /* mm->start_brk, for the heap's bounds */
	__u64 brk;	 /* mm->brk after the call */
	struct vmat_vma_info vma[2];
};

/* vmat_fault_event.flags */
#define VMAT_FAULT_KERNEL_MODE (1u << 0) /* kernel touched a user address */
/*
 * Major/minor as the kernel accounted it (mm_account_fault(): the perf
 * software events page-faults-maj/-min). Neither bit: unknown (the perf
 * events could not be opened, or a recording from before they existed).
 */
#define VMAT_FAULT_MAJOR (1u << 1)
#define VMAT_FAULT_MINOR (1u << 2)
/* The entry tracepoint was not seen for this fault: error_code is unknown. */
#define VMAT_FAULT_NO_ERROR_CODE (1u << 3)
/*
 * Taken while the thread was inside execve (task_struct.in_execve): after
 * exec_mmap() these are the kernel building the new image (writing the new
 * stack, clearing bss) in the new address space, before the exec record.
 */
#define VMAT_FAULT_IN_EXEC (1u << 4)
/*
 * --rss: the fault changed the process's resident counters (rss_stat) by
 * exactly one page, in the counter VMAT_FAULT_RSS_MEMBER() names (enum
 * vmat_mm_counter). Any other change a fault makes (a THP's 512 pages,
 * fault-around's neighbours, a private file page replaced by an anonymous
 * copy) comes as VMAT_EV_RSS_STAT records before the fault's own record.
 */
#define VMAT_FAULT_RSS_ONE (1u << 5)
#define VMAT_FAULT_RSS_SHIFT 6
#define VMAT_FAULT_RSS_MEMBER(flags) (((flags) >> VMAT_FAULT_RSS_SHIFT) & 3u)

struct vmat_fault_event {
	struct vmat_hdr hdr;
	__u64 addr;
	__u64 ip;
	__u32 error_code; /* x86 X86_PF_* bits */
	__u32 flags;
};

#define VMAT_FORK_THREAD (1u << 0)    /* CLONE_THREAD: same process */
#define VMAT_FORK_SHARED_VM (1u << 1) /* CLONE_VM without CLONE_THREAD (vfork, posix_spawn) */
#define VMAT_FORK_TRACED (1u << 2)    /* the child is traced too */

struct vmat_fork_event {
	struct vmat_hdr hdr; /* pid/tid: the parent */
	__u32 child_pid;
	__u32 child_tid;
	__u32 flags; /* VMAT_FORK_* */
	__u32 _pad;
};

/* Followed by the new program's filename (filename_len bytes, NUL included). */
struct vmat_exec_event {
	struct vmat_hdr hdr;
	__u32 old_tid;
	__u32 filename_len;
	__u64 start_brk;
	__u64 brk;
	__u64 start_stack;
};

#define VMAT_EXIT_GROUP (1u << 0) /* last thread: the process is gone */

struct vmat_exit_event {
	struct vmat_hdr hdr;
	__s32 exit_code; /* task->exit_code: as in a wait status */
	__u32 flags;
	__u64 lost; /* with VMAT_EXIT_GROUP: records this process lost */
};

/*
 * One VMA of a layout the kernel walked itself (at exec). seq counts from 0;
 * VMAT_SNAP_LAST marks the final one of a walk, its seq the number of VMAs
 * the walk emitted. With VMAT_SNAP_FAILED the walk did not run (err: what
 * bpf_iter_task_vma_new() returned; -EBUSY when the new mm's mmap lock could
 * not be taken without waiting): the layout is read from /proc instead.
 */
#define VMAT_SNAP_LAST (1u << 0)
#define VMAT_SNAP_FAILED (1u << 1)

struct vmat_vma_snapshot_event {
	struct vmat_hdr hdr;
	__u32 seq;
	__u32 path_len;
	__u32 flags;
	__s32 err; /* with VMAT_SNAP_FAILED */
	struct vmat_vma_info vma;
};

/*
 * A traced process removed or replaced a name (unlink, rename over): a
 * mapped file may now be "(deleted)". The frontend checks which.
 */
enum vmat_fs_op {
	VMAT_FS_UNLINK = 1,
	VMAT_FS_RENAME = 2,
};

struct vmat_fs_event {
	struct vmat_hdr hdr;
	__u32 op; /* enum vmat_fs_op */
	__s32 ret;
};

/*
 * The user registers and the top of the user stack at a growth syscall
 * (brk, anonymous mmap, growing mremap, mprotect adding write), emitted
 * right after that syscall's vmat_syscall_event for the same tid (joined by
 * tid + enter_ts) when malloc attribution is on. The frontend unwinds it
 * from the binaries' CFI (.eh_frame), as perf --call-graph=dwarf does.
 * regs are in DWARF register order (x86-64 psABI: rax, rdx, rcx, rbx, rsi,
 * rdi, rbp, rsp, r8-r15, rip). stack_len bytes copied from regs[rsp] follow.
 */
#define VMAT_UREGS 17
#define VMAT_UREG_SP 7
#define VMAT_UREG_IP 16
#define VMAT_USTACK_MAX 16384

struct vmat_user_stack_event {
	struct vmat_hdr hdr;
	__u64 enter_ts;	 /* of the syscall record this belongs to */
	__u32 sys;	 /* enum vmat_sys */
	__u32 stack_len; /* bytes of stack that follow */
	__u64 regs[VMAT_UREGS];
};

/*
 * A store into a traced process's VMA tree (mm->mm_mt), as the kernel made
 * it: the VMA `vma_key` now covers [index, last] (the maple tree's range,
 * last inclusive), or nothing does when vma_key is 0. Stores arrive between
 * the enter and the exit of the syscall that caused them, on its thread.
 */
enum vmat_vma_kernel_source {
	VMAT_VMAK_MAPLE_TREE = 1, /* raw tracepoint maple_tree:ma_write */
	VMAT_VMAK_FENTRY = 2,	  /* fentry on the VMA functions (vma_mas_store, perf_event_mmap) */
	VMAT_VMAK_KPROBE = 3,	  /* kprobe on the same */
};

struct vmat_vma_kernel_event {
	struct vmat_hdr hdr;
	__u32 source; /* enum vmat_vma_kernel_source */
	__u32 _pad;
	__u64 index;   /* first byte of the stored range */
	__u64 last;    /* last byte of it (inclusive) */
	__u64 vma_key; /* identity of the stored vm_area_struct (its address, salted); 0: cleared */
	struct vmat_vma_info vma; /* the stored VMA at the store (vm_flags may be set after it) */
};

/*
 * An mm syscall with the VMA-tree stores it made, in one record: the stores
 * a traced thread makes while one of its traced syscalls is in flight are
 * kept with the thread (task storage) and written with the syscall's exit
 * instead of one VMAT_EV_VMA_KERNEL record each (one ring reservation, one
 * header, not one per store). `sys` is a whole vmat_syscall_event whose
 * hdr.type is VMAT_EV_SYSCALL_STORES and whose hdr.size covers everything;
 * nstores struct vmat_vma_store follow the struct, then the path
 * (sys.path_len bytes). At most VMAT_SYSCALL_STORES_MAX stores ride along:
 * the ones after them come as VMAT_EV_VMA_KERNEL records before this one
 * (they are later than those carried). A syscall without stores is a plain
 * VMAT_EV_SYSCALL.
 */
#define VMAT_SYSCALL_STORES_MAX 8

/* One store of a VMAT_EV_SYSCALL_STORES: as in vmat_vma_kernel_event. */
struct vmat_vma_store {
	__u64 index;   /* first byte of the stored range */
	__u64 last;    /* last byte of it (inclusive) */
	__u64 vma_key; /* identity of the stored vm_area_struct (salted address); 0: cleared */
	struct vmat_vma_info vma;
};

struct vmat_syscall_stores_event {
	struct vmat_syscall_event sys;
	__u32 nstores; /* struct vmat_vma_store that follow, at most VMAT_SYSCALL_STORES_MAX */
	__u32 source;  /* enum vmat_vma_kernel_source of every store carried */
};

/*
 * A traced thread or process at its creation (before its fork record), when
 * it lives in a PID namespace below the initial one: its pid and tid in its
 * own (innermost) namespace. hdr.pid/tid are the new task's host ids. The
 * payload of the frontend's VMAT_REC_NS_IDS (read from /proc for threads
 * that existed at attach) is the same.
 */
struct vmat_ns_ids_event {
	struct vmat_hdr hdr;
	__u32 nspid;
	__u32 nstid;
};

/*
 * Without CAP_SYS_PTRACE (the loader's vmat_ptrace_* knobs), an exec that
 * leaves a followed process with credentials the tracer may not ptrace
 * (ptrace_may_access(): uid, euid, suid, gid, egid, sgid all the tracer's,
 * dumpable, permitted capabilities within the tracer's effective ones)
 * ends its tracing in the kernel, at the exec, before it runs: this record
 * replaces its exec record (comm left empty). `why`: VMAT_REFUSED_* bits.
 */
#define VMAT_REFUSED_IDS (1u << 0)
#define VMAT_REFUSED_DUMPABLE (1u << 1)
#define VMAT_REFUSED_CAPS (1u << 2)
#define VMAT_REFUSED_GIDS (1u << 3) /* gid, egid or sgid not the tracer's (uids are) */

struct vmat_exec_refused_event {
	struct vmat_hdr hdr;
	__u32 why;
	__u32 uid; /* the real uid the exec left it with */
	__u32 euid;
	__u32 _pad;
};

/*
 * The same judgement at the exit of a syscall that changed a traced
 * thread's credentials or its mm's dumpability (VMAT_CRED_SYSCALLS: setuid,
 * setresuid, capset, prctl(PR_SET_DUMPABLE), ...) while the process runs
 * on without an exec: the whole process leaves the traced set there, when
 * any one of its threads may no longer be ptraced (glibc changes every
 * thread's ids, one syscall each: the first to finish ends it). hdr.tid is
 * that thread. `why`: VMAT_REFUSED_* bits.
 */
struct vmat_cred_refused_event {
	struct vmat_hdr hdr;
	__u32 why;
	__u32 nr;  /* the syscall's x86-64 number (a VMAT_CRED_SYSCALLS row) */
	__u32 uid; /* the thread's real uid after the syscall */
	__u32 euid;
	__u32 gid;
	__u32 egid;
};

/*
 * The kernel's resident counters of an mm (enum mm_counters,
 * include/linux/mm_types_task.h: the same on 6.1 and 6.18), which
 * /proc/PID/status shows as RssFile, RssAnon, VmSwap and RssShmem.
 */
enum vmat_mm_counter {
	VMAT_MM_FILE = 0,
	VMAT_MM_ANON = 1,
	VMAT_MM_SWAP = 2,
	VMAT_MM_SHMEM = 3,
	VMAT_MM_COUNTERS = 4,
};

/*
 * vmat_rss_stat_event.flags. BASE: pages[] are all four counters read now,
 * the first record of this mm (after exec, fork, attach). IN_FAULT: made by
 * the fault at addr, in progress on this thread. OTHER_TASK: made by
 * another task (reclaim, khugepaged, a remote access).
 */
#define VMAT_RSS_STAT_BASE (1u << 0)
#define VMAT_RSS_STAT_IN_FAULT (1u << 1)
#define VMAT_RSS_STAT_OTHER_TASK (1u << 2)

/*
 * --rss: a change of a traced process's resident counters (the rss_stat
 * tracepoint) that no other record tells: every one except a fault's single
 * page (VMAT_FAULT_RSS_ONE). member's counter moved by delta pages; pages[]
 * are the counters after it as the kernel sums them (every CPU's share on
 * 6.2+, where they are per-CPU counters), in pages. Summing the deltas of
 * the records and the faults' single pages from a VMAT_RSS_STAT_BASE record
 * on gives the kernel's counters. mm_key identifies the address space
 * (salted, as vma_key): records of another mm than the last base's belong
 * to an exec's old or new one.
 */
struct vmat_rss_stat_event {
	struct vmat_hdr hdr;
	__u32 member; /* enum vmat_mm_counter */
	__u32 flags;  /* VMAT_RSS_STAT_* */
	__s64 delta;  /* pages */
	__u64 addr;   /* VMAT_RSS_STAT_IN_FAULT: the fault's address */
	__u64 mm_key;
	__s64 pages[VMAT_MM_COUNTERS];
};

/*
 * VMAT_REC_RSS (frontend only): a residency scan of part of one process's
 * address space (the PAGEMAP_SCAN ioctl on /proc/PID/pagemap, 6.7+).
 * Followed by nranges struct vmat_rss_range (the ranges scanned: anything in
 * them not covered by a run is neither resident nor swapped), then nruns
 * struct vmat_rss_run (maximal runs of pages with the same VMAT_RSS_* bits,
 * inside the ranges, sorted). version: VMAT_RSS_SCAN_VERSION; a reader skips
 * a record of a version it does not know.
 */
#define VMAT_RSS_SCAN_VERSION 1

#define VMAT_RSS_PRESENT (1u << 0) /* mapped in a page table (not the zero page) */
#define VMAT_RSS_SWAPPED (1u << 1) /* a swap entry */
#define VMAT_RSS_FILE (1u << 2)	   /* page cache or shmem, not an anonymous page */
#define VMAT_RSS_HUGE (1u << 3)	   /* mapped by a huge page table entry (THP, hugetlb) */

struct vmat_rss_scan {
	struct vmat_hdr hdr;
	__u32 version;
	__u32 flags; /* VMAT_RSS_SCAN_* */
	__u32 nranges;
	__u32 nruns;
	__u64 scan_ns;	  /* CPU time the scan took (thread CPU clock) */
	__u64 kernel_rss; /* /proc/PID/status VmRSS at the scan, bytes; 0: unknown */
};

#define VMAT_RSS_SCAN_FULL (1u << 0)	/* the whole address space was scanned */
#define VMAT_RSS_SCAN_PAGEMAP (1u << 1) /* read from /proc/PID/pagemap: no HUGE */

/*
 * VMAT_REC_JIT_MAP (frontend only): names of code a runtime generated in
 * anonymous memory (JIT), from its /tmp/perf-PID.map, written when the
 * process exits and at the end of the trace so that replay names those
 * frames without the file. Followed by count entries, each: __u64 start,
 * __u64 size, __u32 name length, the name's bytes (no NUL, no padding).
 * A big map is split over several records; the table of a process is the
 * union of its records of the same ts. version: VMAT_JIT_MAP_VERSION; a
 * reader skips a record of a version it does not know.
 */
#define VMAT_JIT_MAP_VERSION 1

struct vmat_jit_map {
	struct vmat_hdr hdr;
	__u32 version;
	__u32 count;
};

struct vmat_rss_range {
	__u64 start;
	__u64 end;
};

struct vmat_rss_run {
	__u64 start;
	__u64 end;
	__u64 flags; /* VMAT_RSS_* */
};

/*
 * VMAT_REC_STACK_FRAMES (frontend only): a VMAT_EV_USER_STACK record
 * unwound when it was recorded, in its place (same hdr, enter_ts and sys):
 * the return addresses, not the stack memory they were found in. Followed
 * by nframes __u64 pcs, innermost first (pcs[0] is the instruction pointer
 * at the syscall). Bit 63 of a pc (VMAT_USTACK_PC_EXACT) says it is the
 * exact instruction rather than a return address (the innermost frame, and
 * frames interrupted by a signal). Each pc's module, file offset and build
 * id follow from the process's layout at that moment (and the `object`
 * notes). version: VMAT_USTACK_FRAMES_VERSION; a reader skips a version it
 * does not know.
 */
#define VMAT_USTACK_FRAMES_VERSION 1
#define VMAT_USTACK_FRAMES_MAX 64
#define VMAT_USTACK_PC_EXACT (1ull << 63)

struct vmat_ustack_frames {
	struct vmat_hdr hdr;
	__u64 enter_ts; /* of the syscall record this belongs to */
	__u32 sys;	/* enum vmat_sys */
	__u16 version;
	__u16 nframes; /* pcs that follow */
};

/*
 * --rss: per traced process, the mm whose resident counters (rss_stat) the
 * BPF side follows and their values as it last summed them, in pages (in
 * the process's vmat_traced entry; mm 0: none yet). The frontend reads it
 * into the stream as VMAT_RSS_STAT_BASE records.
 */
struct vmat_rss_state {
	__u64 mm;
	__s64 pages[VMAT_MM_COUNTERS];
};

/* Per-pid state the BPF side keeps for each traced process. */
struct vmat_traced {
	__u32 follow;		   /* children of this process are traced too */
	__u32 wait_exec;	   /* spawned by vmatrace: ignore it until its exec */
	struct vmat_rss_state rss; /* --rss: kept by the BPF side (faults.bpf.c) */
};

#ifndef __bpf__
#ifdef __cplusplus
#include <cstddef>
#define VMAT_OFFSETOF(t, f) offsetof(t, f)
#else
#include <stddef.h>
#define VMAT_OFFSETOF(t, f) offsetof(t, f)
#endif
#else
#define VMAT_OFFSETOF(t, f) __builtin_offsetof(t, f)
#endif

#ifdef __cplusplus
#define VMAT_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define VMAT_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

VMAT_STATIC_ASSERT(sizeof(struct vmat_hdr) == 40, "vmat_hdr layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_vma_info) == 48, "vmat_vma_info layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_syscall_event) == 224, "vmat_syscall_event layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_syscall_event, vma) == 128, "vmat_syscall_event.vma");
VMAT_STATIC_ASSERT(sizeof(struct vmat_fault_event) == 64, "vmat_fault_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_fork_event) == 56, "vmat_fork_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_exec_event) == 72, "vmat_exec_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_exit_event) == 56, "vmat_exit_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_vma_snapshot_event) == 104, "vmat_vma_snapshot_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_fs_event) == 48, "vmat_fs_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_user_stack_event) == 192, "vmat_user_stack_event layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_user_stack_event, regs) == 56,
		   "vmat_user_stack_event.regs");
VMAT_STATIC_ASSERT(sizeof(struct vmat_vma_kernel_event) == 120, "vmat_vma_kernel_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_ns_ids_event) == 48, "vmat_ns_ids_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_exec_refused_event) == 56, "vmat_exec_refused_event layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_cred_refused_event) == 64, "vmat_cred_refused_event layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_vma_kernel_event, vma) == 72,
		   "vmat_vma_kernel_event.vma");
VMAT_STATIC_ASSERT(sizeof(struct vmat_vma_store) == 72, "vmat_vma_store layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_syscall_stores_event) == 232,
		   "vmat_syscall_stores_event layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_syscall_stores_event, nstores) == 224,
		   "vmat_syscall_stores_event.nstores");
VMAT_STATIC_ASSERT(sizeof(struct vmat_rss_stat_event) == 104, "vmat_rss_stat_event layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_rss_stat_event, pages) == 72,
		   "vmat_rss_stat_event.pages");
VMAT_STATIC_ASSERT(sizeof(struct vmat_rss_state) == 40, "vmat_rss_state layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_traced) == 48, "vmat_traced layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_rss_scan) == 72, "vmat_rss_scan layout");
VMAT_STATIC_ASSERT(VMAT_OFFSETOF(struct vmat_rss_scan, scan_ns) == 56, "vmat_rss_scan.scan_ns");
VMAT_STATIC_ASSERT(sizeof(struct vmat_ustack_frames) == 56, "vmat_ustack_frames layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_rss_range) == 16, "vmat_rss_range layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_jit_map) == 48, "vmat_jit_map layout");
VMAT_STATIC_ASSERT(sizeof(struct vmat_rss_run) == 24, "vmat_rss_run layout");

#endif /* VMATRACE_ABI_EVENTS_H */
