/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The syscall each traced thread is in, shared by the syscalls family
 * (which saves it at entry and consumes it at exit) and the vma family
 * (which keeps the VMA-tree stores the syscall makes with it, written with
 * the syscall's exit record as one VMAT_EV_SYSCALL_STORES).
 */
#pragma once

#include "common.bpf.h"

/* A syscall's six argument registers (those it lacks are 0). */
struct vmat_sys_args {
	__u64 v[6];
};

struct vmat_inflight {
	__u32 sys; /* enum vmat_sys; 0: none in flight */
	__u32 nstores;
	__u64 ts;
	struct vmat_sys_args args;
	__u32 store_source; /* enum vmat_vma_kernel_source of stores[] */
	__u32 _pad;
	/*
	 * The stores made since the entry, in order. Once full, later stores go
	 * out as records of their own (before the syscall's): nothing is lost,
	 * and the frontend puts the carried ones first.
	 */
	struct vmat_vma_store stores[VMAT_SYSCALL_STORES_MAX];
};

/*
 * Task-local storage: found from the task without hashing, allocated at a
 * thread's first traced syscall and freed with the thread; a hash map's
 * update and delete cost about twice as much per call (bucket lock, free
 * list). Where the storage is busy (a program interrupted another on this
 * CPU) the get returns NULL: the exit then takes the unseen path, which
 * reads the same arguments from the task's registers, and a store goes out
 * as a record of its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vmat_inflight);
} vmat_inflight SEC(".maps") __weak;
