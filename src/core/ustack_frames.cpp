#include "core/ustack_frames.h"

#include <cstring>

#include "core/records.h"

namespace vmatrace {

std::vector<std::byte> encode_ustack_frames(vmat_hdr hdr, uint64_t enter_ts, uint32_t sys,
                                            std::span<const uint64_t> pcs) {
  if (pcs.size() > VMAT_USTACK_FRAMES_MAX) pcs = pcs.first(VMAT_USTACK_FRAMES_MAX);
  vmat_ustack_frames f{};
  f.hdr = hdr;
  f.hdr.type = VMAT_REC_STACK_FRAMES;
  f.hdr.size = static_cast<uint32_t>(sizeof(f) + pcs.size_bytes());
  f.enter_ts = enter_ts;
  f.sys = sys;
  f.version = VMAT_USTACK_FRAMES_VERSION;
  f.nframes = static_cast<uint16_t>(pcs.size());
  std::vector<std::byte> out(f.hdr.size);
  std::memcpy(out.data(), &f, sizeof(f));
  if (!pcs.empty()) std::memcpy(out.data() + sizeof(f), pcs.data(), pcs.size_bytes());
  return out;
}

bool decode_ustack_frames(std::span<const std::byte> rec, DecodedRecord& d, std::string* error) {
  if (rec.size() < sizeof(vmat_ustack_frames)) {
    *error = "user stack frames record shorter than its struct";
    return false;
  }
  std::memcpy(&d.frames, rec.data(), sizeof(d.frames));
  if (d.frames.version != VMAT_USTACK_FRAMES_VERSION) {  // a newer writer: skipped
    d.frames.nframes = 0;
    return true;
  }
  if (d.frames.nframes > VMAT_USTACK_FRAMES_MAX ||
      rec.size() - sizeof(vmat_ustack_frames) != d.frames.nframes * sizeof(uint64_t)) {
    *error = "user stack frame count disagrees with the record";
    return false;
  }
  d.stack = rec.subspan(sizeof(vmat_ustack_frames));
  return true;
}

uint64_t ustack_frame_pc(const DecodedRecord& d, size_t i) {
  uint64_t pc = 0;
  std::memcpy(&pc, d.stack.data() + i * sizeof(pc), sizeof(pc));
  return pc;
}

}  // namespace vmatrace
