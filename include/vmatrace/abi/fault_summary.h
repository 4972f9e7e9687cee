/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The in-kernel page-fault aggregates of `--faults=summary`: the keys and
 * values of the hash maps bpf/faults.bpf.c fills and the frontend reads (and
 * deletes) when a traced process exits and at the end of the trace. Not part
 * of any recording: the frontend turns them into a report.
 */
#ifndef VMATRACE_ABI_FAULT_SUMMARY_H
#define VMATRACE_ABI_FAULT_SUMMARY_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/*
 * Map sizes (entries). When a map is full, new keys are not added and the
 * drop is counted in vmat_fault_dropped[VMAT_FSUM_*]; the counts in the
 * other maps stay exact.
 */
#define VMAT_FSUM_VMA_MAX 16384	   /* (tgid, VMA start) */
#define VMAT_FSUM_CHUNK_MAX 65536  /* (tgid, 16-page chunk): ~180 bytes each, allocated on use */
#define VMAT_FSUM_IP_MAX 16384	   /* (tgid, ip) */
#define VMAT_FSUM_THREAD_MAX 16384 /* (tgid, tid) */

enum vmat_fsum_map {
	VMAT_FSUM_VMA = 0,
	VMAT_FSUM_PAGE = 1, /* the page chunks */
	VMAT_FSUM_IP = 2,
	VMAT_FSUM_THREAD = 3,
	VMAT_FSUM_NMAPS = 4,
};

/*
 * How each fault's VMA was found, counted per CPU in vmat_fsum_lookup:
 * the thread's cached VMA, the walk of the VMA tree, bpf_find_vma() when
 * the walk was not sure, or not at all (counted as not attributed).
 */
enum vmat_fsum_lookup {
	VMAT_FSUM_BY_CACHE = 0,
	VMAT_FSUM_BY_WALK = 1,
	VMAT_FSUM_BY_FIND_VMA = 2,
	VMAT_FSUM_NOT_FOUND = 3,
	VMAT_FSUM_NLOOKUPS = 4,
};

struct vmat_fault_counts {
	__u64 faults;
	__u64 read;
	__u64 write;
	__u64 exec;
	__u64 major;
	__u64 minor;
};

/* start 0: the fault's VMA could not be looked up (bpf_find_vma failed). */
struct vmat_fsum_vma_key {
	__u32 tgid;
	__u32 _pad;
	__u64 start;
};

struct vmat_fsum_vma_val {
	__u64 end; /* the VMA's end when it was first faulted in */
	__u64 vm_flags;
	__u64 pgoff;
	__u64 ino; /* 0: anonymous */
	__u32 dev;
	__u32 _pad;
	struct vmat_fault_counts c;
};

/*
 * Per 16 pages (one key per VMAT_FSUM_CHUNK_PAGES aligned pages, addr: the
 * page number >> VMAT_FSUM_CHUNK_SHIFT) and per faulting ip. Chunks, not
 * pages: a new key is an allocation in the fault path (~430 ns per key on
 * a storm of fresh pages, measured), now made once per 16 pages.
 */
#define VMAT_FSUM_CHUNK_SHIFT 4
#define VMAT_FSUM_CHUNK_PAGES (1u << VMAT_FSUM_CHUNK_SHIFT)

struct vmat_fsum_page_chunk {
	__u64 faults[VMAT_FSUM_CHUNK_PAGES]; /* by page within the chunk */
};

struct vmat_fsum_addr_key {
	__u32 tgid;
	__u32 _pad;
	__u64 addr;
};

struct vmat_fsum_thread_key {
	__u32 tgid;
	__u32 tid;
};

#endif /* VMATRACE_ABI_FAULT_SUMMARY_H */
