/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * User page faults (exceptions:page_fault_user) and kernel-mode faults on
 * user addresses (exceptions:page_fault_kernel: copy_to_user into a fresh
 * page), both counted by the kernel in the task's min_flt/maj_flt. Raw
 * tracepoints: no tracefs needed. x86 only: the tracepoints are arch code.
 */
#include "common.bpf.h"

#define VMAT_USER_ADDR_END 0x0000800000000000ULL

static __always_inline int on_fault(struct bpf_raw_tracepoint_args *ctx, __u32 flags)
{
	__u32 tgid = vmat_current_tgid();
	struct vmat_fault_event *e;
	struct pt_regs *regs;

	if (!vmat_lookup_traced(tgid))
		return 0;
	if (ctx->args[0] >= VMAT_USER_ADDR_END)
		return 0;
	e = bpf_ringbuf_reserve(&vmat_events, sizeof(*e), 0);
	if (!e) {
		vmat_count_loss(tgid);
		return 0;
	}
	vmat_fill_hdr(&e->hdr, VMAT_EV_FAULT, sizeof(*e));
	regs = (struct pt_regs *)ctx->args[1];
	e->addr = ctx->args[0];
	e->ip = BPF_CORE_READ(regs, ip);
	e->error_code = ctx->args[2];
	e->flags = flags;
	bpf_ringbuf_submit(e, vmat_wakeup_flags());
	return 0;
}

SEC("raw_tp/page_fault_user")
int fault_user_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fault(ctx, 0);
}

SEC("raw_tp/page_fault_kernel")
int fault_kernel_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fault(ctx, VMAT_FAULT_KERNEL_MODE);
}
