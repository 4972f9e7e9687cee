/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced set's bitmap (common.bpf.h: vmat_maybe_traced), defined once
 * here: the other objects declare it extern and the static linker (`bpftool
 * gen object`) resolves them to this .bss copy, which the skeleton maps into
 * the frontend (BpfTracer::trace_pid sets bits there).
 */
#include "common.bpf.h"

__u64 vmat_traced_bits[VMAT_TRACED_WORDS];
