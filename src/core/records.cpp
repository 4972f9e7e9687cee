#include "core/records.h"

#include <algorithm>
#include <cstring>

#include "core/ustack_frames.h"

namespace vmatrace {
namespace {

constexpr uint32_t kLossNoResync = 1;  // LossRecord flags: found at exit, no resync
constexpr uint32_t kLossUnread = 2;    // left in the ring when tracing stopped

// Serialisation helpers for the frontend records: little-endian host layout,
// every length checked on read.
class Writer {
 public:
  explicit Writer(const vmat_hdr& hdr) { put_raw(&hdr, sizeof(hdr)); }
  void put_raw(const void* p, size_t n) {
    // resize + memcpy rather than insert(): g++ 12 warns (falsely,
    // -Wstringop-overflow) about the inlined insert into an empty vector.
    if (n == 0) return;
    size_t off = out_.size();
    out_.resize(off + n);
    std::memcpy(out_.data() + off, p, n);
  }
  void u32(uint32_t v) { put_raw(&v, sizeof(v)); }
  void u64(uint64_t v) { put_raw(&v, sizeof(v)); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    put_raw(s.data(), s.size());
  }
  std::vector<std::byte> finish() {
    auto size = static_cast<uint32_t>(out_.size());
    std::memcpy(out_.data() + offsetof(vmat_hdr, size), &size, sizeof(size));
    return std::move(out_);
  }

 private:
  std::vector<std::byte> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> b) : b_(b), pos_(sizeof(vmat_hdr)) {}
  bool ok() const { return ok_; }
  template <typename T>
  T get() {
    T v{};
    if (pos_ + sizeof(T) > b_.size()) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    auto n = get<uint32_t>();
    if (!ok_ || n > b_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  size_t remaining() const { return b_.size() - pos_; }

 private:
  std::span<const std::byte> b_;
  size_t pos_;
  bool ok_ = true;
};

std::string_view bounded_string(const char* p, size_t max) { return std::string_view(p, strnlen(p, max)); }

// Trailing string of a kernel record: declared length must fit the record.
bool trailing(std::span<const std::byte> rec, size_t fixed, uint32_t len, std::string_view* out, std::string* error) {
  if (len > rec.size() - fixed) {
    *error = "trailing string runs past the record";
    return false;
  }
  *out = bounded_string(reinterpret_cast<const char*>(rec.data() + fixed), len);
  return true;
}

template <typename T>
bool fits(std::span<const std::byte> rec, std::string* error) {
  if (rec.size() < sizeof(T)) {
    *error = "record shorter than its type";
    return false;
  }
  return true;
}

// A mapped file as FILE_DELETED and HOST_PATH records start: u32 dev, u32 0,
// u64 ino, the path.
void put_file(Writer& w, uint32_t dev, uint64_t ino, std::string_view path) {
  w.u32(dev);
  w.u32(0);
  w.u64(ino);
  w.str(path);
}

void get_file(Reader& r, uint32_t& dev, uint64_t& ino, std::string& path) {
  dev = r.get<uint32_t>();
  r.get<uint32_t>();
  ino = r.get<uint64_t>();
  path = r.str();
}

}  // namespace

std::string_view layout_reason_name(LayoutReason r) {
  switch (r) {
    case LayoutReason::kAttach:
      return "attach";
    case LayoutReason::kExec:
      return "exec";
    case LayoutReason::kResync:
      return "resync";
    case LayoutReason::kSpawn:
      return "spawn";
  }
  return "unknown";
}

vmat_hdr make_header(uint32_t type, uint64_t ts, uint32_t pid, uint32_t tid, std::string_view comm) {
  vmat_hdr h{};
  h.type = type;
  h.ts = ts;
  h.pid = pid;
  h.tid = tid;
  std::memcpy(h.comm, comm.data(), std::min(comm.size(), sizeof(h.comm) - 1));
  return h;
}

std::vector<std::byte> encode_layout(const vmat_hdr& hdr, const LayoutRecord& layout) {
  Writer w(hdr);
  w.u32(static_cast<uint32_t>(layout.reason));
  w.u32(static_cast<uint32_t>(layout.vmas.size()));
  w.u64(layout.start_brk);
  w.u64(layout.brk);
  w.u64(layout.start_stack);
  for (const auto& v : layout.vmas) {
    w.u64(v.start);
    w.u64(v.end);
    w.u64(v.flags);
    w.u64(v.pgoff);
    w.u64(v.ino);
    w.u32(v.dev);
    w.u32(v.deleted ? 1 : 0);
    w.str(v.path);
    w.str(v.special);
  }
  return w.finish();
}

std::vector<std::byte> encode_loss(const vmat_hdr& hdr, const LossRecord& loss) {
  Writer w(hdr);
  w.u64(loss.lost);
  w.u64(loss.lost_total);
  w.u32((loss.resync ? 0 : kLossNoResync) | (loss.unread ? kLossUnread : 0));
  w.u64(loss.since_ts);
  return w.finish();
}

std::vector<std::byte> encode_note(const vmat_hdr& hdr, const NoteRecord& note) {
  Writer w(hdr);
  w.str(note.key);
  w.str(note.value);
  return w.finish();
}

std::vector<std::byte> encode_file_deleted(const vmat_hdr& hdr, const FileDeletedRecord& rec) {
  Writer w(hdr);
  put_file(w, rec.dev, rec.ino, rec.path);
  return w.finish();
}

std::vector<std::byte> encode_host_path(const vmat_hdr& hdr, const HostPathRecord& rec) {
  Writer w(hdr);
  put_file(w, rec.dev, rec.ino, rec.path);
  w.str(rec.host_path);
  return w.finish();
}

std::vector<std::byte> encode_ns_ids(const vmat_hdr& hdr, const NsIdsRecord& rec) {
  Writer w(hdr);
  w.u32(rec.nspid);
  w.u32(rec.nstid);
  return w.finish();
}

std::vector<std::byte> encode_rss_scan(const vmat_hdr& hdr, const RssScanRecord& rec) {
  Writer w(hdr);
  w.u32(VMAT_RSS_SCAN_VERSION);
  w.u32(rec.flags);
  w.u32(static_cast<uint32_t>(rec.ranges.size()));
  w.u32(static_cast<uint32_t>(rec.runs.size()));
  w.u64(rec.scan_ns);
  w.u64(rec.kernel_rss);
  for (const auto& r : rec.ranges) {
    w.u64(r.start);
    w.u64(r.end);
  }
  for (const auto& r : rec.runs) {
    w.u64(r.start);
    w.u64(r.end);
    w.u64(r.flags);
  }
  return w.finish();
}

vmat_vma_store CarriedStores::operator[](size_t i) const {
  vmat_vma_store st;
  std::memcpy(&st, bytes_.data() + i * sizeof(st), sizeof(st));
  return st;
}

std::vector<std::byte> encode_jit_map(const vmat_hdr& hdr, std::span<const JitCode> code) {
  Writer w(hdr);
  w.u32(VMAT_JIT_MAP_VERSION);
  w.u32(static_cast<uint32_t>(code.size()));
  for (const auto& c : code) {
    w.u64(c.start);
    w.u64(c.size);
    w.str(c.name);
  }
  return w.finish();
}

Vma vma_from_info(const vmat_vma_info& info, std::string_view path) {
  Vma v;
  v.start = info.start;
  v.end = info.end;
  v.flags = info.flags;
  v.pgoff = info.pgoff;
  if (info.state & VMAT_VMA_SPECIAL) {
    v.special = std::string(path);
  } else if (info.state & VMAT_VMA_FILE) {
    v.dev = info.dev;
    v.ino = info.ino;
    v.path = std::string(path);
    v.deleted = (info.state & VMAT_VMA_DELETED) != 0;
  }
  return v;
}

namespace {

// VMAT_EV_SYSCALL_STORES: the syscall record (decoded as VMAT_EV_SYSCALL),
// its stores, then its path.
bool decode_syscall_stores(std::span<const std::byte> rec, DecodedRecord& d, std::string* error) {
  if (!fits<vmat_syscall_stores_event>(rec, error)) return false;
  vmat_syscall_stores_event x;
  std::memcpy(&x, rec.data(), sizeof(x));
  d.type = VMAT_EV_SYSCALL;
  d.sys = x.sys;
  if (d.sys.sys == 0 || d.sys.sys >= VMAT_SYS_MAX) {
    *error = "unknown syscall id";
    return false;
  }
  constexpr size_t kStore = sizeof(vmat_vma_store);
  if (x.nstores > (rec.size() - sizeof(x)) / kStore) {
    *error = "syscall record shorter than its store count";
    return false;
  }
  const size_t fixed = sizeof(x) + x.nstores * kStore;
  d.stores = CarriedStores(x.source, rec.subspan(sizeof(x), x.nstores * kStore));
  for (size_t i = 0; i < d.stores.size(); i++) {
    const vmat_vma_store st = d.stores[i];
    if (st.last < st.index) {
      *error = "VMA store with its last byte before its first";
      return false;
    }
  }
  return trailing(rec, fixed, d.sys.path_len, &d.path, error);
}

// decode_record() into a record the caller owns: the record is built in
// place rather than copied out (it is large, and this runs for every record).
bool decode_into(std::span<const std::byte> rec, DecodedRecord& d, std::string* error) {
  if (rec.size() < sizeof(vmat_hdr)) {
    *error = "record shorter than its header";
    return false;
  }
  std::memcpy(&d.hdr, rec.data(), sizeof(d.hdr));
  if (d.hdr.size != rec.size()) {
    *error = "record size field disagrees with its length";
    return false;
  }
  d.type = d.hdr.type;
  d.comm = bounded_string(reinterpret_cast<const char*>(rec.data()) + offsetof(vmat_hdr, comm), sizeof(d.hdr.comm));
  switch (d.type) {
    case VMAT_EV_SYSCALL:
      if (!fits<vmat_syscall_event>(rec, error)) return false;
      std::memcpy(&d.sys, rec.data(), sizeof(d.sys));
      if (d.sys.sys == 0 || d.sys.sys >= VMAT_SYS_MAX) {
        *error = "unknown syscall id";
        return false;
      }
      if (!trailing(rec, sizeof(vmat_syscall_event), d.sys.path_len, &d.path, error)) return false;
      break;
    case VMAT_EV_SYSCALL_STORES:
      if (!decode_syscall_stores(rec, d, error)) return false;
      break;
    case VMAT_EV_FAULT:
      if (!fits<vmat_fault_event>(rec, error)) return false;
      std::memcpy(&d.fault, rec.data(), sizeof(d.fault));
      break;
    case VMAT_EV_FORK:
      if (!fits<vmat_fork_event>(rec, error)) return false;
      std::memcpy(&d.fork, rec.data(), sizeof(d.fork));
      break;
    case VMAT_EV_EXEC:
      if (!fits<vmat_exec_event>(rec, error)) return false;
      std::memcpy(&d.exec, rec.data(), sizeof(d.exec));
      if (!trailing(rec, sizeof(vmat_exec_event), d.exec.filename_len, &d.path, error)) return false;
      break;
    case VMAT_EV_EXEC_REFUSED:
      if (!fits<vmat_exec_refused_event>(rec, error)) return false;
      std::memcpy(&d.exec_refused, rec.data(), sizeof(d.exec_refused));
      break;
    case VMAT_EV_CRED_REFUSED:
      if (!fits<vmat_cred_refused_event>(rec, error)) return false;
      std::memcpy(&d.cred_refused, rec.data(), sizeof(d.cred_refused));
      break;
    case VMAT_EV_EXIT:
      if (!fits<vmat_exit_event>(rec, error)) return false;
      std::memcpy(&d.exit, rec.data(), sizeof(d.exit));
      break;
    case VMAT_EV_NS_IDS: {
      if (!fits<vmat_ns_ids_event>(rec, error)) return false;
      vmat_ns_ids_event e;
      std::memcpy(&e, rec.data(), sizeof(e));
      d.ns_ids = NsIdsRecord{e.nspid, e.nstid};
      break;
    }
    case VMAT_EV_RSS_STAT:
      if (!fits<vmat_rss_stat_event>(rec, error)) return false;
      std::memcpy(&d.rss_stat, rec.data(), sizeof(d.rss_stat));
      if (d.rss_stat.member >= VMAT_MM_COUNTERS) {
        *error = "rss_stat record of an unknown counter";
        return false;
      }
      break;
    case VMAT_EV_FS:
      if (!fits<vmat_fs_event>(rec, error)) return false;
      std::memcpy(&d.fs, rec.data(), sizeof(d.fs));
      break;
    case VMAT_EV_USER_STACK:
      if (!fits<vmat_user_stack_event>(rec, error)) return false;
      std::memcpy(&d.ustack, rec.data(), sizeof(d.ustack));
      if (d.ustack.stack_len > VMAT_USTACK_MAX || d.ustack.stack_len != rec.size() - sizeof(vmat_user_stack_event)) {
        *error = "user stack length disagrees with the record";
        return false;
      }
      d.stack = rec.subspan(sizeof(vmat_user_stack_event));
      break;
    case VMAT_EV_VMA_KERNEL:
      if (!fits<vmat_vma_kernel_event>(rec, error)) return false;
      std::memcpy(&d.vmak, rec.data(), sizeof(d.vmak));
      if (d.vmak.last < d.vmak.index) {
        *error = "VMA store with its last byte before its first";
        return false;
      }
      break;
    case VMAT_EV_VMA_SNAPSHOT:
      if (!fits<vmat_vma_snapshot_event>(rec, error)) return false;
      std::memcpy(&d.snap, rec.data(), sizeof(d.snap));
      if (!trailing(rec, sizeof(vmat_vma_snapshot_event), d.snap.path_len, &d.path, error)) return false;
      break;
    case VMAT_REC_LAYOUT: {
      Reader r(rec);
      LayoutRecord l;
      auto reason = r.get<uint32_t>();
      auto n = r.get<uint32_t>();
      l.start_brk = r.get<uint64_t>();
      l.brk = r.get<uint64_t>();
      l.start_stack = r.get<uint64_t>();
      if (reason < 1 || reason > 4) {
        *error = "unknown layout reason";
        return false;
      }
      l.reason = static_cast<LayoutReason>(reason);
      // Each VMA takes at least 56 bytes: a count beyond that is a lie.
      if (!r.ok() || n > r.remaining() / 56) {
        *error = "layout record shorter than its VMA count";
        return false;
      }
      l.vmas.reserve(n);
      for (uint32_t i = 0; i < n && r.ok(); i++) {
        Vma v;
        v.start = r.get<uint64_t>();
        v.end = r.get<uint64_t>();
        v.flags = r.get<uint64_t>();
        v.pgoff = r.get<uint64_t>();
        v.ino = r.get<uint64_t>();
        v.dev = r.get<uint32_t>();
        v.deleted = r.get<uint32_t>() != 0;
        v.path = r.str();
        v.special = r.str();
        if (v.end <= v.start) {
          *error = "layout record holds an empty VMA";
          return false;
        }
        l.vmas.push_back(std::move(v));
      }
      if (!r.ok()) {
        *error = "layout record truncated";
        return false;
      }
      d.layout = std::move(l);
      break;
    }
    case VMAT_REC_LOSS: {
      Reader r(rec);
      LossRecord l;
      l.lost = r.get<uint64_t>();
      l.lost_total = r.get<uint64_t>();
      if (!r.ok()) {
        *error = "loss record truncated";
        return false;
      }
      if (r.remaining() >= sizeof(uint32_t)) {
        const uint32_t flags = r.get<uint32_t>();
        l.resync = !(flags & kLossNoResync);
        l.unread = flags & kLossUnread;
      }
      if (r.remaining() >= sizeof(uint64_t)) l.since_ts = r.get<uint64_t>();
      d.loss = l;
      break;
    }
    case VMAT_REC_NOTE: {
      Reader r(rec);
      NoteRecord n;
      n.key = r.str();
      n.value = r.str();
      if (!r.ok()) {
        *error = "note record truncated";
        return false;
      }
      d.note = std::move(n);
      break;
    }
    case VMAT_REC_FILE_DELETED: {
      Reader r(rec);
      FileDeletedRecord f;
      get_file(r, f.dev, f.ino, f.path);
      if (!r.ok()) {
        *error = "file-deleted record truncated";
        return false;
      }
      d.file_deleted = std::move(f);
      break;
    }
    case VMAT_REC_HOST_PATH: {
      Reader r(rec);
      HostPathRecord h;
      get_file(r, h.dev, h.ino, h.path);
      h.host_path = r.str();
      if (!r.ok()) {
        *error = "host-path record truncated";
        return false;
      }
      d.host_path = std::move(h);
      break;
    }
    case VMAT_REC_NS_IDS: {
      Reader r(rec);
      NsIdsRecord n;
      n.nspid = r.get<uint32_t>();
      n.nstid = r.get<uint32_t>();
      if (!r.ok()) {
        *error = "namespace-ids record truncated";
        return false;
      }
      d.ns_ids = n;
      break;
    }
    case VMAT_REC_JIT_MAP: {
      if (!fits<vmat_jit_map>(rec, error)) return false;
      vmat_jit_map m;
      std::memcpy(&m, rec.data(), sizeof(m));
      if (m.version != VMAT_JIT_MAP_VERSION) break;  // newer writer: skipped
      Reader r(rec);
      r.get<uint32_t>();
      r.get<uint32_t>();
      // Each entry takes at least 20 bytes: a count beyond that is a lie.
      if (m.count > r.remaining() / 20) {
        *error = "jit map record shorter than its entry count";
        return false;
      }
      JitMapRecord j;
      j.code.reserve(m.count);
      for (uint32_t i = 0; i < m.count && r.ok(); i++) {
        JitCode c;
        c.start = r.get<uint64_t>();
        c.size = r.get<uint64_t>();
        c.name = r.str();
        j.code.push_back(std::move(c));
      }
      if (!r.ok()) {
        *error = "jit map record truncated";
        return false;
      }
      d.jit_map = std::move(j);
      break;
    }
    case VMAT_REC_RSS: {
      if (!fits<vmat_rss_scan>(rec, error)) return false;
      vmat_rss_scan f;
      std::memcpy(&f, rec.data(), sizeof(f));
      if (f.version != VMAT_RSS_SCAN_VERSION) break;  // newer writer: skipped
      const size_t tail = rec.size() - sizeof(f);
      if (f.nranges > tail / sizeof(vmat_rss_range) ||
          tail != f.nranges * sizeof(vmat_rss_range) + size_t{f.nruns} * sizeof(vmat_rss_run)) {
        *error = "rss record size disagrees with its counts";
        return false;
      }
      RssScanRecord r;
      r.flags = f.flags;
      r.scan_ns = f.scan_ns;
      r.kernel_rss = f.kernel_rss;
      r.ranges.resize(f.nranges);
      r.runs.resize(f.nruns);
      // memcpy may not be given an empty vector's null data(), even for 0 bytes.
      if (f.nranges) std::memcpy(r.ranges.data(), rec.data() + sizeof(f), f.nranges * sizeof(vmat_rss_range));
      if (f.nruns)
        std::memcpy(r.runs.data(), rec.data() + sizeof(f) + f.nranges * sizeof(vmat_rss_range),
                    f.nruns * sizeof(vmat_rss_run));
      // Sorted and disjoint, or the model's interval map would be corrupted.
      uint64_t prev = 0;
      for (const auto& x : r.ranges) {
        if (x.start >= x.end || x.start < prev) {
          *error = "rss record ranges are not sorted and disjoint";
          return false;
        }
        prev = x.end;
      }
      prev = 0;
      for (const auto& x : r.runs) {
        if (x.start >= x.end || x.start < prev) {
          *error = "rss record runs are not sorted and disjoint";
          return false;
        }
        prev = x.end;
      }
      d.rss = std::move(r);
      break;
    }
    case VMAT_REC_STACK_FRAMES:
      if (!decode_ustack_frames(rec, d, error)) return false;
      break;
    default:
      break;  // newer writer: the caller skips it
  }
  return true;
}

}  // namespace

std::optional<DecodedRecord> decode_record(std::span<const std::byte> rec, std::string* error) {
  std::optional<DecodedRecord> out(std::in_place);
  if (!decode_into(rec, *out, error)) out.reset();
  return out;
}

}  // namespace vmatrace
