/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few uapi and kernel constants the BPF side tests syscall arguments
 * and results against. vmlinux.h carries types and enums, not #defines, and
 * the uapi headers cannot be included next to it (their types clash), so
 * they are restated here (x86-64 values).
 */
#pragma once

/* include/uapi/asm-generic/mman-common.h */
#ifndef PROT_NONE
#define PROT_NONE 0x0
#endif
#ifndef PROT_WRITE
#define PROT_WRITE 0x2
#endif
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS 0x20
#endif

/* include/linux/err.h: results in [-MAX_ERRNO, -1] are errors, others values (addresses). */
#ifndef MAX_ERRNO
#define MAX_ERRNO 4095
#endif
#define VMAT_IS_ERR(ret) ((ret) < 0 && (ret) >= -MAX_ERRNO)

/* arch/x86/include/asm/page_types.h */
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096ULL
#endif
#ifndef PAGE_MASK
#define PAGE_MASK (~(PAGE_SIZE - 1))
#endif
