#pragma once
// VMAT_REC_STACK_FRAMES: a user stack unwound when it was recorded, in
// place of the VMAT_EV_USER_STACK record (and its raw stack memory) that
// BPF copied. Only the return addresses are kept; `record
// --keep-stack-bytes` keeps the raw record instead. The record's own
// encoding lives here (the decoder in core/records.cpp only calls it).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmatrace/abi/events.h"

namespace vmatrace {

struct DecodedRecord;

// A user stack in either form: raw bytes (VMAT_EV_USER_STACK) or unwound
// frames (VMAT_REC_STACK_FRAMES). What counts as "the recording has malloc
// stacks".
constexpr bool is_user_stack_record(uint32_t type) {
  return type == VMAT_EV_USER_STACK || type == VMAT_REC_STACK_FRAMES;
}

// The record for `pcs` (innermost first; VMAT_USTACK_PC_EXACT set on exact
// instruction pointers), at most VMAT_USTACK_FRAMES_MAX of them. hdr's type
// and size are set here.
std::vector<std::byte> encode_ustack_frames(vmat_hdr hdr, uint64_t enter_ts, uint32_t sys,
                                            std::span<const uint64_t> pcs);

// Fills d.frames and d.stack (the pcs' bytes) from `rec`. A version this
// reader does not know decodes with nframes 0 and no pcs (skipped by its
// users). False, with *error set, for a malformed record.
bool decode_ustack_frames(std::span<const std::byte> rec, DecodedRecord& d, std::string* error);

// The i-th pc of a decoded frames record (d.stack holds them unaligned).
uint64_t ustack_frame_pc(const DecodedRecord& d, size_t i);

}  // namespace vmatrace
