/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Name removals by traced processes (unlink, unlinkat, rename*): after one,
 * /proc may print a mapped file as "(deleted)". No tracepoint on the VFS
 * path carries the inode, so this only says "look now"; the frontend checks
 * which mapped files lost their name. One program serves every sys_exit_*
 * tracepoint (same record layout); the loader attaches it to each.
 */
#include "common.bpf.h"

SEC("tracepoint")
int files_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tgid = vmat_current_tgid();
	struct vmat_fs_event e = {};
	long nr = ctx->id;

	if (ctx->ret != 0 || !vmat_lookup_traced(tgid))
		return 0;
	/* x86-64: rename 82, unlink 87, unlinkat 263, renameat 264, renameat2 316 */
	e.op = (nr == 87 || nr == 263) ? VMAT_FS_UNLINK : VMAT_FS_RENAME;
	e.ret = ctx->ret;
	vmat_fill_hdr(&e.hdr, VMAT_EV_FS, sizeof(e));
	vmat_output(&e, sizeof(e), tgid);
	return 0;
}
