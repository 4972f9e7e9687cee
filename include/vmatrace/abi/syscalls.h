/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one table of the syscalls vmatrace traces. Everything that needs the
 * list expands it: the enum vmat_sys (below), the BPF programs of every
 * flavour (bpf/syscalls.bpf.c), the raw_syscalls number map, the loader's
 * attach table, `features`, the names, the decoder and the encoders.
 * Adding a syscall: a row here, and its model rule (src/core/).
 *
 * VMAT_SYSCALL(name, NAME, id, x86_64_nr, nargs, required, ret, range, args...)
 *  name      the kernel's name (sys_enter_<name>, __x64_sys_<name>)
 *  NAME      the enum suffix: VMAT_SYS_<NAME>
 *  id        enum vmat_sys value: stored in recordings, never reused
 *  x86_64_nr the x86-64 syscall number (arch/x86/entry/syscalls/syscall_64.tbl)
 *  nargs     how many arguments it takes
 *  required  1: every kernel has it, vmatrace refuses to run without it;
 *            0: left out (and named by `features`) where the kernel lacks it
 *  ret       VMAT_RET_ADDR (an address on success) or VMAT_RET_INT
 *  range     where the VMAs it results in are (VMAT_RANGE_*)
 *  args      VMAT_ARG(json_name, VMAT_ARGK_*) for each argument, in order
 */
#ifndef VMATRACE_ABI_SYSCALLS_H
#define VMATRACE_ABI_SYSCALLS_H

/* How an argument is shown (text / JSON). */
#define VMAT_ARGK_PTR 1		  /* hex, NULL when 0 in text / hex string */
#define VMAT_ARGK_ADDR 2	  /* hex / hex string */
#define VMAT_ARGK_SIZE 3	  /* "N [human]" / number */
#define VMAT_ARGK_INT 4		  /* signed 32-bit (fd, shmid, pkey) / number */
#define VMAT_ARGK_OFFSET 5	  /* hex / number */
#define VMAT_ARGK_PROT 6	  /* PROT_* names */
#define VMAT_ARGK_MMAP_FLAGS 7	  /* MAP_* names */
#define VMAT_ARGK_MREMAP_FLAGS 8  /* MREMAP_* names */
#define VMAT_ARGK_MREMAP_NEW 9	  /* an address, shown only with MREMAP_FIXED */
#define VMAT_ARGK_MADVICE 10	  /* MADV_* name */
#define VMAT_ARGK_MLOCK2_FLAGS 11 /* MLOCK_* names */
#define VMAT_ARGK_MCL_FLAGS 12	  /* MCL_* names */
#define VMAT_ARGK_SHM_FLAGS 13	  /* SHM_* names */

/* The result's kind. */
#define VMAT_RET_INT 0
#define VMAT_RET_ADDR 1

/* Where the kernel's resulting VMAs are (vmat_syscall_event.vma[]). */
#define VMAT_RANGE_NONE 0      /* no VMA (munmap, mlockall, munlockall, shmdt) */
#define VMAT_RANGE_RET_LEN1 1  /* [ret, ret + args[1]) (mmap) */
#define VMAT_RANGE_RET_LEN2 2  /* [ret, ret + args[2]) (mremap) */
#define VMAT_RANGE_RET 3       /* the VMA at ret; its size is not an argument (shmat) */
#define VMAT_RANGE_ARG0_LEN1 4 /* [args[0] & PAGE_MASK, args[0] + args[1]) (mprotect, ...) */
#define VMAT_RANGE_BRK 5       /* the VMA below the new break (brk) */

#define VMAT_SYSCALLS(X)                                                                       \
	X(mmap, MMAP, 1, 9, 6, 1, VMAT_RET_ADDR, VMAT_RANGE_RET_LEN1,                          \
	  VMAT_ARG(addr, VMAT_ARGK_PTR), VMAT_ARG(len, VMAT_ARGK_SIZE),                        \
	  VMAT_ARG(prot, VMAT_ARGK_PROT), VMAT_ARG(flags, VMAT_ARGK_MMAP_FLAGS),               \
	  VMAT_ARG(fd, VMAT_ARGK_INT), VMAT_ARG(offset, VMAT_ARGK_OFFSET))                     \
	X(munmap, MUNMAP, 2, 11, 2, 1, VMAT_RET_INT, VMAT_RANGE_NONE,                          \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE))                       \
	X(brk, BRK, 3, 12, 1, 1, VMAT_RET_ADDR, VMAT_RANGE_BRK, VMAT_ARG(addr, VMAT_ARGK_PTR)) \
	X(mremap, MREMAP, 4, 25, 5, 1, VMAT_RET_ADDR, VMAT_RANGE_RET_LEN2,                     \
	  VMAT_ARG(old_addr, VMAT_ARGK_ADDR), VMAT_ARG(old_len, VMAT_ARGK_SIZE),               \
	  VMAT_ARG(new_len, VMAT_ARGK_SIZE), VMAT_ARG(flags, VMAT_ARGK_MREMAP_FLAGS),          \
	  VMAT_ARG(new_addr, VMAT_ARGK_MREMAP_NEW))                                            \
	X(mprotect, MPROTECT, 5, 10, 3, 1, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,                 \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE),                       \
	  VMAT_ARG(prot, VMAT_ARGK_PROT))                                                      \
	X(madvise, MADVISE, 6, 28, 3, 1, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,                   \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE),                       \
	  VMAT_ARG(advice, VMAT_ARGK_MADVICE))                                                 \
	X(mlock, MLOCK, 7, 149, 2, 0, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,                      \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE))                       \
	X(munlock, MUNLOCK, 8, 150, 2, 0, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,                  \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE))                       \
	X(mlock2, MLOCK2, 9, 325, 3, 0, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,                    \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE),                       \
	  VMAT_ARG(flags, VMAT_ARGK_MLOCK2_FLAGS))                                             \
	X(mlockall, MLOCKALL, 10, 151, 1, 0, VMAT_RET_INT, VMAT_RANGE_NONE,                    \
	  VMAT_ARG(flags, VMAT_ARGK_MCL_FLAGS))                                                \
	X(munlockall, MUNLOCKALL, 11, 152, 0, 0, VMAT_RET_INT, VMAT_RANGE_NONE)                \
	X(pkey_mprotect, PKEY_MPROTECT, 12, 329, 4, 0, VMAT_RET_INT, VMAT_RANGE_ARG0_LEN1,     \
	  VMAT_ARG(addr, VMAT_ARGK_ADDR), VMAT_ARG(len, VMAT_ARGK_SIZE),                       \
	  VMAT_ARG(prot, VMAT_ARGK_PROT), VMAT_ARG(pkey, VMAT_ARGK_INT))                       \
	X(shmat, SHMAT, 13, 30, 3, 0, VMAT_RET_ADDR, VMAT_RANGE_RET,                           \
	  VMAT_ARG(shmid, VMAT_ARGK_INT), VMAT_ARG(addr, VMAT_ARGK_PTR),                       \
	  VMAT_ARG(flags, VMAT_ARGK_SHM_FLAGS))                                                \
	X(shmdt, SHMDT, 14, 67, 1, 0, VMAT_RET_INT, VMAT_RANGE_NONE, VMAT_ARG(addr, VMAT_ARGK_ADDR))

/*
 * The syscalls after which a thread's credentials or its mm's dumpability
 * may have changed (kernel/sys.c, kernel/capability.c, kernel/groups.c:
 * set*id, setgroups, capset; prctl's PR_SET_DUMPABLE). Without
 * CAP_SYS_PTRACE, each exit of one by a traced thread is judged again as
 * ptrace_may_access() would judge it (bpf/ptrace.bpf.h); these are not
 * traced as memory syscalls and have no vmat_sys id. execve is judged at
 * sched_process_exec instead.
 *
 * VMAT_CRED_SYSCALL(name, x86_64_nr)
 *  name      the kernel's name (sys_exit_<name>)
 *  x86_64_nr the x86-64 syscall number (arch/x86/entry/syscalls/syscall_64.tbl)
 */
/* clang-format off */
#define VMAT_CRED_SYSCALLS(X) \
	X(setuid, 105)        \
	X(setgid, 106)        \
	X(setreuid, 113)      \
	X(setregid, 114)      \
	X(setgroups, 116)     \
	X(setresuid, 117)     \
	X(setresgid, 119)     \
	X(setfsuid, 122)      \
	X(setfsgid, 123)      \
	X(capset, 126)        \
	X(prctl, 157)
/* clang-format on */

/*
 * VMAT_IF_REQUIRED(required, ...) expands to the other arguments when a
 * row's `required` is 1, VMAT_IF_OPTIONAL when it is 0 (both must stay the
 * literals 0 or 1): how a consumer picks rows into a list while the
 * preprocessor walks the table (the six every kernel has, the others).
 */
#define VMAT_IF_REQUIRED(required, ...) VMAT_IF_REQUIRED_##required(__VA_ARGS__)
#define VMAT_IF_REQUIRED_1(...) __VA_ARGS__
#define VMAT_IF_REQUIRED_0(...)
#define VMAT_IF_OPTIONAL(required, ...) VMAT_IF_OPTIONAL_##required(__VA_ARGS__)
#define VMAT_IF_OPTIONAL_1(...)
#define VMAT_IF_OPTIONAL_0(...) __VA_ARGS__

/* Syscalls that change or inspect the address space (vmat_syscall_event.sys). */
#define VMAT_SYS_ENUM_ROW(name, NAME, id, ...) VMAT_SYS_##NAME = id,
enum vmat_sys {
	VMAT_SYSCALLS(VMAT_SYS_ENUM_ROW) VMAT_SYS_MAX, /* one past the largest id */
};
#undef VMAT_SYS_ENUM_ROW

#endif /* VMATRACE_ABI_SYSCALLS_H */
