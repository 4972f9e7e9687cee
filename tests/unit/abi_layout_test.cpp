// The event ABI is a contract with recordings already on disk: any change to
// a record's size or field offsets must come with a new VMAT_ABI_VERSION (and
// a new record type id). This test pins the layout of version 1.
#include <gtest/gtest.h>

#include <sys/syscall.h>

#include <cstddef>

#include "vmatrace/abi/events.h"

namespace {

TEST(AbiLayout, VersionIsPinned) {
  // Bump both this expectation and the offsets below together with the
  // header when the layout changes.
  EXPECT_EQ(VMAT_ABI_VERSION, 1);
}

TEST(AbiLayout, HeaderLayout) {
  EXPECT_EQ(sizeof(vmat_hdr), 40u);
  EXPECT_EQ(offsetof(vmat_hdr, type), 0u);
  EXPECT_EQ(offsetof(vmat_hdr, size), 4u);
  EXPECT_EQ(offsetof(vmat_hdr, ts), 8u);
  EXPECT_EQ(offsetof(vmat_hdr, pid), 16u);
  EXPECT_EQ(offsetof(vmat_hdr, tid), 20u);
  EXPECT_EQ(offsetof(vmat_hdr, comm), 24u);
}

TEST(AbiLayout, SyscallEventLayout) {
  EXPECT_EQ(sizeof(vmat_syscall_event), 224u);
  EXPECT_EQ(offsetof(vmat_syscall_event, sys), 40u);
  EXPECT_EQ(offsetof(vmat_syscall_event, path_len), 44u);
  EXPECT_EQ(offsetof(vmat_syscall_event, ret), 48u);
  EXPECT_EQ(offsetof(vmat_syscall_event, args), 56u);
  EXPECT_EQ(offsetof(vmat_syscall_event, enter_ts), 104u);
  EXPECT_EQ(offsetof(vmat_syscall_event, start_brk), 112u);
  EXPECT_EQ(offsetof(vmat_syscall_event, brk), 120u);
  EXPECT_EQ(offsetof(vmat_syscall_event, vma), 128u);
  EXPECT_EQ(sizeof(vmat_vma_info), 48u);
  EXPECT_EQ(offsetof(vmat_vma_info, ino), 32u);
  EXPECT_EQ(offsetof(vmat_vma_info, dev), 40u);
  EXPECT_EQ(offsetof(vmat_vma_info, state), 44u);
}

TEST(AbiLayout, OtherEvents) {
  EXPECT_EQ(sizeof(vmat_fault_event), 64u);
  EXPECT_EQ(offsetof(vmat_fault_event, addr), 40u);
  EXPECT_EQ(offsetof(vmat_fault_event, ip), 48u);
  EXPECT_EQ(offsetof(vmat_fault_event, error_code), 56u);
  EXPECT_EQ(sizeof(vmat_fork_event), 56u);
  EXPECT_EQ(offsetof(vmat_fork_event, child_pid), 40u);
  EXPECT_EQ(sizeof(vmat_exec_event), 72u);
  EXPECT_EQ(offsetof(vmat_exec_event, start_stack), 64u);
  EXPECT_EQ(sizeof(vmat_exit_event), 56u);
  EXPECT_EQ(offsetof(vmat_exit_event, lost), 48u);
  EXPECT_EQ(sizeof(vmat_vma_snapshot_event), 104u);
  EXPECT_EQ(offsetof(vmat_vma_snapshot_event, vma), 56u);
}

TEST(AbiLayout, FaultFlagBitsNeverChange) {
  // Recordings carry these bits; the report reads major/minor from them.
  EXPECT_EQ(VMAT_FAULT_KERNEL_MODE, 1u << 0);
  EXPECT_EQ(VMAT_FAULT_MAJOR, 1u << 1);
  EXPECT_EQ(VMAT_FAULT_MINOR, 1u << 2);
  EXPECT_EQ(VMAT_FAULT_NO_ERROR_CODE, 1u << 3);
  EXPECT_EQ(offsetof(vmat_fault_event, flags), 60u);
}

TEST(AbiLayout, RecordTypeIdsNeverChange) {
  EXPECT_EQ(VMAT_EV_SYSCALL, 1);
  EXPECT_EQ(VMAT_EV_FAULT, 2);
  EXPECT_EQ(VMAT_EV_FORK, 3);
  EXPECT_EQ(VMAT_EV_EXEC, 4);
  EXPECT_EQ(VMAT_EV_EXIT, 5);
  EXPECT_EQ(VMAT_EV_VMA_SNAPSHOT, 6);
  EXPECT_EQ(VMAT_EV_FS, 7);
  EXPECT_EQ(sizeof(vmat_fs_event), 48u);
  EXPECT_EQ(VMAT_EV_VMA_KERNEL, 10);
  EXPECT_EQ(sizeof(vmat_vma_kernel_event), 120u);
  EXPECT_EQ(offsetof(vmat_vma_kernel_event, index), 48u);
  EXPECT_EQ(offsetof(vmat_vma_kernel_event, vma_key), 64u);
  EXPECT_EQ(VMAT_EV_NS_IDS, 11);
  EXPECT_EQ(sizeof(vmat_ns_ids_event), 48u);
  EXPECT_EQ(offsetof(vmat_ns_ids_event, nstid), 44u);
  EXPECT_EQ(offsetof(vmat_vma_kernel_event, vma), 72u);
  EXPECT_EQ(VMAT_VMAK_MAPLE_TREE, 1);
  EXPECT_EQ(VMAT_VMAK_FENTRY, 2);
  EXPECT_EQ(VMAT_VMAK_KPROBE, 3);
  EXPECT_EQ(VMAT_EV_SYSCALL_STORES, 12);
  EXPECT_EQ(VMAT_EV_EXEC_REFUSED, 14);
  EXPECT_EQ(sizeof(vmat_exec_refused_event), 56u);
  EXPECT_EQ(offsetof(vmat_exec_refused_event, why), 40u);
  EXPECT_EQ(offsetof(vmat_exec_refused_event, euid), 48u);
  EXPECT_EQ(VMAT_EV_CRED_REFUSED, 15);
  EXPECT_EQ(sizeof(vmat_cred_refused_event), 64u);
  EXPECT_EQ(offsetof(vmat_cred_refused_event, why), 40u);
  EXPECT_EQ(offsetof(vmat_cred_refused_event, nr), 44u);
  EXPECT_EQ(offsetof(vmat_cred_refused_event, uid), 48u);
  EXPECT_EQ(offsetof(vmat_cred_refused_event, egid), 60u);
  EXPECT_EQ(sizeof(vmat_vma_store), 72u);
  EXPECT_EQ(offsetof(vmat_vma_store, vma), 24u);
  EXPECT_EQ(sizeof(vmat_syscall_stores_event), 232u);
  EXPECT_EQ(offsetof(vmat_syscall_stores_event, nstores), 224u);
  EXPECT_EQ(offsetof(vmat_syscall_stores_event, source), 228u);
  EXPECT_EQ(VMAT_SYSCALL_STORES_MAX, 8);
  EXPECT_EQ(VMAT_EV_RSS_STAT, 13);
  EXPECT_EQ(sizeof(vmat_rss_stat_event), 104u);
  EXPECT_EQ(offsetof(vmat_rss_stat_event, delta), 48u);
  EXPECT_EQ(offsetof(vmat_rss_stat_event, mm_key), 64u);
  EXPECT_EQ(offsetof(vmat_rss_stat_event, pages), 72u);
  EXPECT_EQ(VMAT_MM_FILE, 0);
  EXPECT_EQ(VMAT_MM_ANON, 1);
  EXPECT_EQ(VMAT_MM_SWAP, 2);
  EXPECT_EQ(VMAT_MM_SHMEM, 3);
  EXPECT_EQ(VMAT_FAULT_RSS_ONE, 1u << 5);
  EXPECT_EQ(VMAT_FAULT_RSS_MEMBER(VMAT_FAULT_RSS_ONE | (3u << VMAT_FAULT_RSS_SHIFT)), 3u);
  EXPECT_EQ(VMAT_REC_LAYOUT, 0x8001);
  EXPECT_EQ(VMAT_REC_LOSS, 0x8002);
  EXPECT_EQ(VMAT_REC_NOTE, 0x8003);
  EXPECT_EQ(VMAT_REC_FILE_DELETED, 0x8004);
  EXPECT_EQ(VMAT_REC_NS_IDS, 0x8005);
}

}  // namespace

namespace {

TEST(AbiLayout, UserStackEvent) {
  EXPECT_EQ(VMAT_EV_USER_STACK, 8);
  EXPECT_EQ(sizeof(vmat_user_stack_event), 192u);
  EXPECT_EQ(offsetof(vmat_user_stack_event, enter_ts), 40u);
  EXPECT_EQ(offsetof(vmat_user_stack_event, sys), 48u);
  EXPECT_EQ(offsetof(vmat_user_stack_event, stack_len), 52u);
  EXPECT_EQ(offsetof(vmat_user_stack_event, regs), 56u);
  EXPECT_EQ(VMAT_UREGS, 17);
  EXPECT_EQ(VMAT_UREG_SP, 7);
  EXPECT_EQ(VMAT_UREG_IP, 16);
}

TEST(AbiLayout, RssScanLayout) {
  // A frontend record (VMAT_REC_RSS), versioned by its own field.
  EXPECT_EQ(VMAT_REC_RSS, 0x8006);
  EXPECT_EQ(VMAT_RSS_SCAN_VERSION, 1);
  EXPECT_EQ(sizeof(vmat_rss_scan), 72u);
  EXPECT_EQ(offsetof(vmat_rss_scan, version), 40u);
  EXPECT_EQ(offsetof(vmat_rss_scan, flags), 44u);
  EXPECT_EQ(offsetof(vmat_rss_scan, nranges), 48u);
  EXPECT_EQ(offsetof(vmat_rss_scan, nruns), 52u);
  EXPECT_EQ(offsetof(vmat_rss_scan, scan_ns), 56u);
  EXPECT_EQ(offsetof(vmat_rss_scan, kernel_rss), 64u);
  EXPECT_EQ(sizeof(vmat_rss_range), 16u);
  EXPECT_EQ(sizeof(vmat_rss_run), 24u);
  EXPECT_EQ(offsetof(vmat_rss_run, flags), 16u);
}

TEST(AbiLayout, UstackFramesLayout) {
  // A frontend record (VMAT_REC_STACK_FRAMES): a user stack unwound at
  // record time, versioned by its own field, pcs after it.
  EXPECT_EQ(VMAT_REC_STACK_FRAMES, 0x8007);
  EXPECT_EQ(VMAT_USTACK_FRAMES_VERSION, 1);
  EXPECT_EQ(VMAT_USTACK_FRAMES_MAX, 64);
  EXPECT_EQ(VMAT_USTACK_PC_EXACT, 1ull << 63);
  EXPECT_EQ(sizeof(vmat_ustack_frames), 56u);
  EXPECT_EQ(offsetof(vmat_ustack_frames, enter_ts), 40u);
  EXPECT_EQ(offsetof(vmat_ustack_frames, sys), 48u);
  EXPECT_EQ(offsetof(vmat_ustack_frames, version), 52u);
  EXPECT_EQ(offsetof(vmat_ustack_frames, nframes), 54u);
}

TEST(AbiLayout, JitMapLayout) {
  // A frontend record (VMAT_REC_JIT_MAP), versioned by its own field.
  EXPECT_EQ(VMAT_REC_JIT_MAP, 0x8008);
  EXPECT_EQ(VMAT_JIT_MAP_VERSION, 1);
  EXPECT_EQ(sizeof(vmat_jit_map), 48u);
  EXPECT_EQ(offsetof(vmat_jit_map, version), 40u);
  EXPECT_EQ(offsetof(vmat_jit_map, count), 44u);
}

// The credential syscalls judged at their exit: the numbers the BPF side
// matches (raw_syscalls) are the C library's.
TEST(AbiLayout, CredSyscallNumbersAreTheKernels) {
#define VMAT_CRED_NR_ROW(name, nr) EXPECT_EQ(SYS_##name, nr) << #name;
  VMAT_CRED_SYSCALLS(VMAT_CRED_NR_ROW)
#undef VMAT_CRED_NR_ROW
}

}  // namespace
