#include "core/checkpoint.h"

#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace vmatrace {
namespace {

// "VCKP", then a version: a reader restores only the versions it knows
// (and replays from the start otherwise).
constexpr uint32_t kMagic = 0x504b4356;
constexpr uint32_t kVersion = 1;

// Little-endian fields, strings from a table (a layout's paths repeat).
class Encoder {
 public:
  template <class T>
  void put(T v) {
    static_assert(std::is_integral_v<T>);
    for (size_t i = 0; i < sizeof(T); i++)
      out_.push_back(static_cast<std::byte>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
  void put_bytes(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void put_string(std::string_view s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    put_bytes(s.data(), s.size());
  }
  // An interned string as its index in the table (0: empty).
  void put_interned(const InternedString& s) {
    if (s.empty()) return put<uint32_t>(0);
    auto [it, added] = index_.try_emplace(s.view(), static_cast<uint32_t>(table_.size() + 1));
    if (added) table_.push_back(s.view());
    put<uint32_t>(it->second);
  }
  void put_vma(const Vma& v) {
    put(v.start);
    put(v.end);
    put(v.flags);
    put(v.pgoff);
    put(v.ino);
    put<uint64_t>(v.id);
    put<uint8_t>(static_cast<uint8_t>((v.deleted ? 1 : 0) | (v.anon_vma ? 2 : 0)));
    put(v.dev);
    put(v.file_key);
    put_interned(v.path);
    put_interned(v.special);
    put_interned(v.anon_name);
  }
  // Header, string table, then the body written so far.
  std::vector<std::byte> finish() {
    Encoder head;
    head.put(kMagic);
    head.put(kVersion);
    head.put<uint32_t>(static_cast<uint32_t>(table_.size()));
    for (auto s : table_) head.put_string(s);
    head.out_.insert(head.out_.end(), out_.begin(), out_.end());
    return std::move(head.out_);
  }

 private:
  std::vector<std::byte> out_;
  std::vector<std::string_view> table_;  // views of interned strings: they live as long as the program
  std::unordered_map<std::string_view, uint32_t> index_;
};

class Decoder {
 public:
  explicit Decoder(std::span<const std::byte> in) : in_(in) {}
  template <class T>
  T get() {
    need(sizeof(T));
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); i++) v |= uint64_t{std::to_integer<uint8_t>(in_[pos_ + i])} << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  bool get_bool() { return get<uint8_t>() != 0; }
  void get_bytes(void* p, size_t n) {
    need(n);
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::string get_string() {
    const uint32_t n = get<uint32_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // A count of items of at least `min_size` bytes each: bounded by what is left.
  size_t get_count(size_t min_size) {
    const uint32_t n = get<uint32_t>();
    if (static_cast<uint64_t>(n) * min_size > in_.size() - pos_) throw std::runtime_error("count past the end");
    return n;
  }
  void read_table() {
    const size_t n = get_count(4);
    table_.reserve(n);
    for (size_t i = 0; i < n; i++) table_.emplace_back(get_string());
  }
  InternedString get_interned() {
    const uint32_t i = get<uint32_t>();
    if (i == 0) return {};
    if (i > table_.size()) throw std::runtime_error("string index out of range");
    return table_[i - 1];
  }
  Vma get_vma() {
    Vma v;
    v.start = get<uint64_t>();
    v.end = get<uint64_t>();
    v.flags = get<uint64_t>();
    v.pgoff = get<uint64_t>();
    v.ino = get<uint64_t>();
    v.id = get<uint64_t>() & ((uint64_t{1} << 62) - 1);
    const auto bits = get<uint8_t>();
    v.deleted = bits & 1;
    v.anon_vma = bits & 2;
    v.dev = get<uint32_t>();
    v.file_key = get<uint32_t>();
    v.path = get_interned();
    v.special = get_interned();
    v.anon_name = get_interned();
    return v;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  void need(size_t n) const {
    if (in_.size() - pos_ < n) throw std::runtime_error("cut short");
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  std::vector<InternedString> table_;
};

constexpr size_t kVmaBytes = 5 * 8 + 8 + 1 + 4 + 4 + 3 * 4;

}  // namespace

std::vector<std::byte> Checkpoint::save(const Processor& p) const {
  Encoder e;
  e.put(last_ts_);
  e.put(records_);
  e.put(p.start_ts_);
  e.put<uint8_t>(p.gate_vma_ ? 1 : 0);
  if (p.gate_vma_) e.put_vma(*p.gate_vma_);
  e.put<uint8_t>(static_cast<uint8_t>(p.vma_source_));
  e.put<uint8_t>(p.syscall_entry_unknown_ ? 1 : 0);

  e.put<uint32_t>(static_cast<uint32_t>(p.procs_.size()));
  for (const auto& [pid, sp] : p.procs_) {
    const ProcessState& s = *sp;
    e.put(s.pid);
    e.put(s.parent);
    e.put_string(s.comm);
    e.put_string(s.exe);
    e.put<uint8_t>(s.seeded ? 1 : 0);
    e.put_string(s.unknown_reason);
    e.put(s.seed_ts);
    e.put<uint8_t>(s.awaiting_exec_walk ? 1 : 0);
    e.put<uint32_t>(static_cast<uint32_t>(s.exec_walk.size()));
    for (const auto& v : s.exec_walk) e.put_vma(v);
    e.put<uint32_t>(static_cast<uint32_t>(s.early_clears.size()));
    for (const auto& c : s.early_clears) {
      e.put(c.tid);
      e.put(c.ts);
      e.put_vma(c.piece);
    }
    e.put(s.lost_total);
    e.put(s.resyncs);
    e.put(s.events);
    e.put<uint8_t>(s.exited ? 1 : 0);
    e.put<int32_t>(s.exit_code);
    const Layout& l = s.layout;
    e.put(l.start_brk_);
    e.put(l.brk_);
    e.put(l.start_stack_);
    e.put(l.next_id_);
    e.put<uint8_t>(l.soft_dirty_ ? 1 : 0);
    e.put(l.stack_rlimit_);
    e.put(l.def_flags_);
    e.put(l.shm_attaches_);
    e.put<uint32_t>(static_cast<uint32_t>(l.size()));
    l.for_each_vma([&](const Vma& v) { e.put_vma(v); });
  }

  e.put<uint32_t>(static_cast<uint32_t>(p.pending_stores_.size()));
  for (const auto& [tid, stores] : p.pending_stores_) {
    e.put(tid);
    e.put<uint32_t>(static_cast<uint32_t>(stores.size()));
    for (const auto& st : stores) {
      e.put(st.ts);
      e.put(st.start);
      e.put(st.end);
      e.put(st.key);
      e.put_bytes(&st.info, sizeof(st.info));  // an ABI struct, host byte order as the records are
    }
  }
  e.put<uint32_t>(static_cast<uint32_t>(p.ns_ids_.size()));
  for (const auto& [tid, ns] : p.ns_ids_) {
    e.put(tid);
    e.put(ns.nspid);
    e.put(ns.nstid);
  }

  const LossWindows& w = windows_;
  e.put<uint32_t>(static_cast<uint32_t>(w.windows_.size()));
  for (const auto& win : w.windows_) {
    e.put(win.pid);
    e.put(win.from);
    e.put(win.until);
    e.put(win.lost);
  }
  e.put<uint32_t>(static_cast<uint32_t>(w.awaiting_resync_.size()));
  for (const auto& [pid, i] : w.awaiting_resync_) {
    e.put(pid);
    e.put<uint64_t>(i);
  }
  e.put<uint32_t>(static_cast<uint32_t>(w.last_layout_.size()));
  for (const auto& [pid, ts] : w.last_layout_) {
    e.put(pid);
    e.put(ts);
  }
  return e.finish();
}

bool Checkpoint::restore(std::span<const std::byte> state, Processor& p, Restored& out, std::string* why) {
  try {
    Decoder d(state);
    if (d.get<uint32_t>() != kMagic) throw std::runtime_error("not a checkpoint");
    if (const auto v = d.get<uint32_t>(); v != kVersion)
      throw std::runtime_error("checkpoint version " + std::to_string(v) + " (this vmatrace reads " +
                               std::to_string(kVersion) + ")");
    d.read_table();
    out.last_ts = d.get<uint64_t>();
    out.records = d.get<uint64_t>();
    p.start_ts_ = d.get<uint64_t>();
    if (d.get_bool()) p.gate_vma_ = d.get_vma();
    const auto source = d.get<uint8_t>();
    if (source > static_cast<uint8_t>(VmaChangeSource::kKprobe)) throw std::runtime_error("unknown VMA change source");
    if (!p.infer_only_) p.vma_source_ = static_cast<VmaChangeSource>(source);
    p.syscall_entry_unknown_ = d.get_bool();

    const size_t nprocs = d.get_count(4);
    for (size_t i = 0; i < nprocs; i++) {
      auto s = std::make_unique<ProcessState>();
      s->pid = d.get<uint32_t>();
      s->parent = d.get<uint32_t>();
      s->comm = d.get_string();
      s->exe = d.get_string();
      s->seeded = d.get_bool();
      s->unknown_reason = d.get_string();
      s->seed_ts = d.get<uint64_t>();
      s->awaiting_exec_walk = d.get_bool();
      const size_t nwalk = d.get_count(kVmaBytes);
      for (size_t k = 0; k < nwalk; k++) s->exec_walk.push_back(d.get_vma());
      const size_t nclears = d.get_count(kVmaBytes);
      for (size_t k = 0; k < nclears; k++) {
        ProcessState::EarlyClear c;
        c.tid = d.get<uint32_t>();
        c.ts = d.get<uint64_t>();
        c.piece = d.get_vma();
        s->early_clears.push_back(c);
      }
      s->lost_total = d.get<uint64_t>();
      s->resyncs = d.get<uint64_t>();
      s->events = d.get<uint64_t>();
      s->exited = d.get_bool();
      s->exit_code = d.get<int32_t>();
      Layout& l = s->layout;
      l.start_brk_ = d.get<uint64_t>();
      l.brk_ = d.get<uint64_t>();
      l.start_stack_ = d.get<uint64_t>();
      const uint64_t next_id = d.get<uint64_t>();
      l.soft_dirty_ = d.get_bool();
      l.stack_rlimit_ = d.get<uint64_t>();
      l.def_flags_ = d.get<uint64_t>();
      l.shm_attaches_ = d.get<uint64_t>();
      const size_t nvmas = d.get_count(kVmaBytes);
      std::vector<Vma> vmas;
      vmas.reserve(nvmas);
      for (size_t k = 0; k < nvmas; k++) vmas.push_back(d.get_vma());
      l.restore(std::move(vmas), next_id);
      const uint32_t pid = s->pid;
      if (!p.procs_.emplace(pid, std::move(s)).second) throw std::runtime_error("process listed twice");
    }

    const size_t ntids = d.get_count(8);
    for (size_t i = 0; i < ntids; i++) {
      auto& stores = p.pending_stores_[d.get<uint32_t>()];
      const size_t n = d.get_count(32 + sizeof(vmat_vma_info));
      for (size_t k = 0; k < n; k++) {
        KernelStore st;
        st.ts = d.get<uint64_t>();
        st.start = d.get<uint64_t>();
        st.end = d.get<uint64_t>();
        st.key = d.get<uint64_t>();
        d.get_bytes(&st.info, sizeof(st.info));
        stores.push_back(st);
      }
    }
    const size_t nns = d.get_count(12);
    for (size_t i = 0; i < nns; i++) {
      const auto tid = d.get<uint32_t>();
      NsIdsRecord ns;
      ns.nspid = d.get<uint32_t>();
      ns.nstid = d.get<uint32_t>();
      p.ns_ids_[tid] = ns;
    }

    LossWindows& w = out.windows;
    const size_t nwin = d.get_count(28);
    for (size_t i = 0; i < nwin; i++) {
      LossWindows::Window win;
      win.pid = d.get<uint32_t>();
      win.from = d.get<uint64_t>();
      win.until = d.get<uint64_t>();
      win.lost = d.get<uint64_t>();
      w.windows_.push_back(win);
    }
    const size_t nawait = d.get_count(12);
    for (size_t i = 0; i < nawait; i++) {
      const auto pid = d.get<uint32_t>();
      const auto idx = d.get<uint64_t>();
      if (idx >= w.windows_.size()) throw std::runtime_error("loss window index out of range");
      w.awaiting_resync_[pid] = static_cast<size_t>(idx);
    }
    const size_t nlast = d.get_count(12);
    for (size_t i = 0; i < nlast; i++) {
      const auto pid = d.get<uint32_t>();
      w.last_layout_[pid] = d.get<uint64_t>();
    }
    if (!d.done()) throw std::runtime_error("bytes after the end");
    return true;
  } catch (const std::exception& ex) {
    if (why) *why = ex.what();
    return false;
  }
}

}  // namespace vmatrace
