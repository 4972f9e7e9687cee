#pragma once
// Decoding of the binary records that flow from BPF (and from the frontend)
// through the live pipeline and through recordings. Every accessor checks
// sizes: the same code reads untrusted recordings.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/layout.h"
#include "vmatrace/abi/events.h"

namespace vmatrace {

// Why a full layout was (re)read.
enum class LayoutReason : uint32_t {
  kAttach = 1,  // -p PID: /proc at attach
  kExec = 2,    // exec on a kernel without the VMA iterator: /proc after exec
  kResync = 3,  // after lost events
  kSpawn = 4,   // -- CMD stopped at exec by ptrace: /proc before its first instruction
};
std::string_view layout_reason_name(LayoutReason r);

// VMAT_REC_LAYOUT: a whole layout of one process.
struct LayoutRecord {
  LayoutReason reason = LayoutReason::kAttach;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  std::vector<Vma> vmas;
};

// VMAT_REC_LOSS: the kernel dropped records of this process.
struct LossRecord {
  uint64_t lost = 0;        // newly lost since the previous loss record
  uint64_t lost_total = 0;  // for this process so far
  // A resync of the layout from /proc follows; false when the loss was found
  // in the process's exit record (nothing left to read). Stored as a
  // trailing u32 flags word (bit 0: ended, no resync); a record without it
  // (files before it) was always followed by a resync.
  bool resync = true;
  // Not dropped by the kernel: still in the ring buffer when tracing
  // stopped, and left unread there (producers that kept writing while the
  // last records were read). Flags bit 1; never with a resync.
  bool unread = false;
  // CLOCK_MONOTONIC ns from which the process's records may be missing: the
  // last moment every record the kernel had dropped until then was
  // accounted for, so the model is exact before it and may not be from it
  // until the layout read after this record (or to the process's end
  // without a resync). 0: not known (files before it): from the process's
  // previous full layout. A trailing u64 after the flags word.
  uint64_t since_ts = 0;
};

// VMAT_REC_NOTE: key/value annotations (attach modes, gate VMA, detach).
struct NoteRecord {
  std::string key, value;
};

// A decoded record. The fixed part is copied out (records in a recording
// are not aligned); `type` says which member is meaningful. Views point into
// the record's bytes, which must outlive this.
// VMAT_REC_FILE_DELETED: a mapped file is no longer reachable by its path.
struct FileDeletedRecord {
  uint32_t dev = 0;
  uint64_t ino = 0;
  std::string path;
};

// VMAT_REC_HOST_PATH: the file (dev, ino) that a process in another mount
// namespace or under another root maps as `path` is `host_path` in the
// tracer's file tree. Once per file and file tree, before the first record
// that names it; only where the two paths differ.
struct HostPathRecord {
  uint32_t dev = 0;
  uint64_t ino = 0;
  std::string path, host_path;
};

// VMAT_REC_NS_IDS and VMAT_EV_NS_IDS: the thread hdr.tid of process
// hdr.pid (host ids) is nstid of process nspid in its own PID namespace.
// From BPF at its fork (VMAT_EV_NS_IDS), or from /proc for a thread that
// existed before (the last NSpid/NStgid of /proc/PID/task/TID/status):
// once per thread, before its first record, only for threads in another
// PID namespace than vmatrace's.
struct NsIdsRecord {
  uint32_t nspid = 0;
  uint32_t nstid = 0;
};

// VMAT_REC_RSS: a residency scan of some ranges of one process.
struct RssScanRecord {
  uint32_t flags = 0;  // VMAT_RSS_SCAN_*
  uint64_t scan_ns = 0, kernel_rss = 0;
  std::vector<vmat_rss_range> ranges;  // scanned; sorted, disjoint
  std::vector<vmat_rss_run> runs;      // inside the ranges; sorted, disjoint
};

// The VMA-tree stores a syscall record carries (VMAT_EV_SYSCALL_STORES), in
// the order the kernel made them; views into the record's bytes (which are
// not aligned in a recording: each store is copied out on access).
class CarriedStores {
 public:
  CarriedStores() = default;
  CarriedStores(uint32_t source, std::span<const std::byte> bytes) : source_(source), bytes_(bytes) {}
  uint32_t source() const { return source_; }  // enum vmat_vma_kernel_source
  size_t size() const { return bytes_.size() / sizeof(vmat_vma_store); }
  bool empty() const { return bytes_.empty(); }
  vmat_vma_store operator[](size_t i) const;

 private:
  uint32_t source_ = 0;
  std::span<const std::byte> bytes_;
};

// One piece of generated code: a line of a /tmp/perf-PID.map.
struct JitCode {
  uint64_t start = 0, size = 0;
  std::string name;
  bool operator==(const JitCode&) const = default;
};

// VMAT_REC_JIT_MAP: (part of) the JIT code names of process hdr.pid.
struct JitMapRecord {
  std::vector<JitCode> code;
};

struct DecodedRecord {
  // What the record is. A VMAT_EV_SYSCALL_STORES decodes as a VMAT_EV_SYSCALL
  // (`sys`, `path`) with its `stores`; hdr.type keeps the type on the wire.
  uint32_t type = 0;
  vmat_hdr hdr{};
  std::string_view comm;
  // The fixed part, by type (a union: decoding is on the replay hot path).
  union {
    vmat_syscall_event sys;
    vmat_fault_event fault;
    vmat_fork_event fork;
    vmat_exec_event exec;
    vmat_exit_event exit;
    vmat_vma_snapshot_event snap;
    vmat_fs_event fs;
    vmat_user_stack_event ustack;
    vmat_vma_kernel_event vmak;
    vmat_ustack_frames frames;  // VMAT_REC_STACK_FRAMES (core/ustack_frames.h)
    vmat_exec_refused_event exec_refused;
    vmat_cred_refused_event cred_refused;
    vmat_rss_stat_event rss_stat;
  };
  std::string_view path;             // syscall vma[0] path, exec filename, snapshot path
  std::span<const std::byte> stack;  // VMAT_EV_USER_STACK: the copied user stack; VMAT_REC_STACK_FRAMES: the pcs
  CarriedStores stores;              // VMAT_EV_SYSCALL_STORES: the syscall's VMA-tree stores
  std::optional<LayoutRecord> layout;
  std::optional<LossRecord> loss;
  std::optional<NoteRecord> note;
  std::optional<FileDeletedRecord> file_deleted;
  std::optional<HostPathRecord> host_path;
  std::optional<NsIdsRecord> ns_ids;
  std::optional<RssScanRecord> rss;     // VMAT_REC_RSS (unset for a version this reader does not know)
  std::optional<JitMapRecord> jit_map;  // VMAT_REC_JIT_MAP (unset for a version this reader does not know)

  DecodedRecord() : sys{} {}
};

// Decodes one record. Returns nullopt and sets *error for a malformed one;
// unknown types decode with only the header filled (callers skip them).
std::optional<DecodedRecord> decode_record(std::span<const std::byte> rec, std::string* error);

// Builders for the frontend's own records.
vmat_hdr make_header(uint32_t type, uint64_t ts, uint32_t pid, uint32_t tid, std::string_view comm);
std::vector<std::byte> encode_layout(const vmat_hdr& hdr, const LayoutRecord& layout);
std::vector<std::byte> encode_loss(const vmat_hdr& hdr, const LossRecord& loss);
std::vector<std::byte> encode_note(const vmat_hdr& hdr, const NoteRecord& note);
std::vector<std::byte> encode_file_deleted(const vmat_hdr& hdr, const FileDeletedRecord& rec);
std::vector<std::byte> encode_host_path(const vmat_hdr& hdr, const HostPathRecord& rec);
std::vector<std::byte> encode_ns_ids(const vmat_hdr& hdr, const NsIdsRecord& rec);
std::vector<std::byte> encode_rss_scan(const vmat_hdr& hdr, const RssScanRecord& rec);
// code[from, to) as one record.
std::vector<std::byte> encode_jit_map(const vmat_hdr& hdr, std::span<const JitCode> code);

// The Vma described by a kernel vmat_vma_info (+ its path when known).
Vma vma_from_info(const vmat_vma_info& info, std::string_view path);

}  // namespace vmatrace
