#include "report/pprof_profile.h"

#include <google/protobuf/io/gzip_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <stdexcept>

#include "core/proc_maps.h"
#include "pprof.pb.h"  // generated from src/report/proto/pprof.proto
#include "report/fault_report.h"

namespace vmatrace {
namespace {

constexpr int kGrowthBytes = 0, kGrowthCount = 1, kFaultCount = 2;
constexpr uint64_t kUserEnd = 0x0000800000000000ull;  // x86-64: above is the kernel

}  // namespace

PprofBuilder::PprofBuilder(bool with_faults) : profile_(std::make_unique<pprof::Profile>()), with_faults_(with_faults) {
  str("");  // string_table[0] is always ""
  auto type = [this](const char* t, const char* unit) {
    auto* vt = profile_->add_sample_type();
    vt->set_type(str(t));
    vt->set_unit(str(unit));
  };
  type("growth/bytes", "bytes");
  type("growth/count", "count");
  if (with_faults_) type("faults/count", "count");
  profile_->set_default_sample_type(str("growth/bytes"));
}

PprofBuilder::~PprofBuilder() = default;

int64_t PprofBuilder::str(const std::string& s) {
  auto [it, added] = strings_.try_emplace(s, profile_->string_table_size());
  if (added) profile_->add_string_table(s);
  return it->second;
}

void PprofBuilder::set_build_id(const std::string& path, const std::string& build_id) { build_ids_[path] = build_id; }

void PprofBuilder::set_time(uint64_t start_ns, uint64_t end_ns) {
  profile_->set_time_nanos(static_cast<int64_t>(start_ns));
  profile_->set_duration_nanos(static_cast<int64_t>(end_ns > start_ns ? end_ns - start_ns : 0));
}

// The VMA holding pc in the layout of the moment, as a Mapping (one per
// distinct VMA extent and file), or 0 (pprof: no mapping) when unknown.
uint64_t PprofBuilder::mapping_for(uint64_t pc, const Layout* layout) {
  const Vma* v = layout ? layout->find(pc) : nullptr;
  if (!v) return 0;
  const std::string name = maps_name(*layout, *v);
  const uint64_t offset = v->is_file() ? (v->pgoff << kPageShift) : 0;
  auto [it, added] = mappings_.try_emplace({v->start, v->end, offset, name}, mappings_.size() + 1);
  if (added) {
    auto* m = profile_->add_mapping();
    m->set_id(it->second);
    m->set_memory_start(v->start);
    m->set_memory_limit(v->end);
    m->set_file_offset(offset);
    m->set_filename(str(name));
    if (auto b = build_ids_.find(v->path); b != build_ids_.end()) m->set_build_id(str(b->second));
    // Symbolized here, from the recording: pprof must not look the
    // addresses up again in whatever files have those names now.
    m->set_has_functions(true);
    m->set_has_filenames(true);
    m->set_has_line_numbers(true);
  }
  return it->second;
}

uint64_t PprofBuilder::function_for(const std::string& name, const std::string& system_name, const std::string& file) {
  auto [it, added] = functions_.try_emplace({name, system_name, file}, functions_.size() + 1);
  if (added) {
    auto* f = profile_->add_function();
    f->set_id(it->second);
    f->set_name(str(name));
    f->set_system_name(str(system_name));
    f->set_filename(str(file));
  }
  return it->second;
}

uint64_t PprofBuilder::location_for(uint64_t pc, const Layout* layout, const std::string& function,
                                    const std::string& system_name, const std::string& file, int line) {
  const uint64_t mapping = mapping_for(pc, layout);
  const uint64_t fn = function.empty() ? 0 : function_for(function, system_name, file);
  auto [it, added] = locations_.try_emplace({mapping, pc, fn, line}, locations_.size() + 1);
  if (added) {
    auto* l = profile_->add_location();
    l->set_id(it->second);
    l->set_mapping_id(mapping);
    l->set_address(pc);
    if (fn) {
      auto* ln = l->add_line();
      ln->set_function_id(fn);
      ln->set_line(line);
    }
  }
  return it->second;
}

bool PprofBuilder::add_sample(std::vector<uint64_t> locations, const std::string& label_key,
                              const std::string& label_value, std::initializer_list<std::pair<int, int64_t>> values) {
  auto [it, added] =
      samples_.try_emplace({std::move(locations), label_key + "=" + label_value}, profile_->sample_size());
  pprof::Sample* s;
  if (added) {
    s = profile_->add_sample();
    for (uint64_t id : it->first.first) s->add_location_id(id);
    for (int i = 0; i < profile_->sample_type_size(); i++) s->add_value(0);
    auto* l = s->add_label();
    l->set_key(str(label_key));
    l->set_str(str(label_value));
  } else {
    s = profile_->mutable_sample(it->second);
  }
  for (auto [index, value] : values) s->set_value(index, s->value(index) + value);
  return added;
}

void PprofBuilder::add_growth(const MallocGrowth& g, const Layout* layout) {
  // From the call site outwards: the allocator's own frames (malloc,
  // sysmalloc, brk) say nothing about who grew memory; the allocator is a
  // label instead.
  std::vector<uint64_t> stack;
  const size_t first = g.attribution.call_site.value_or(0);
  for (size_t i = first; i < g.stack.size(); i++) {
    const StackFrame& f = g.stack[i];
    stack.push_back(location_for(f.pc, layout, f.function, f.symbol, f.file, f.line));
  }
  const std::string allocator = g.attribution.allocator.value_or("none");
  if (add_sample(std::move(stack), "allocator", allocator,
                 {{kGrowthBytes, static_cast<int64_t>(g.bytes)}, {kGrowthCount, 1}}))
    growth_samples_++;
}

void PprofBuilder::add_fault(uint64_t ip, bool major, bool minor, const Layout* layout) {
  if (!with_faults_) return;
  const Vma* code = layout && ip < kUserEnd ? layout->find(ip) : nullptr;
  // Named as `report --faults` names code locations: object+offset.
  const std::string where = code_location(ip, code, layout);
  std::vector<uint64_t> stack{location_for(ip, ip < kUserEnd ? layout : nullptr, where, where, "", 0)};
  if (add_sample(std::move(stack), "fault", major ? "major" : minor ? "minor" : "unknown", {{kFaultCount, 1}}))
    fault_samples_++;
}

std::string PprofBuilder::gzipped() {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::GzipOutputStream::Options o;
    o.format = google::protobuf::io::GzipOutputStream::GZIP;
    google::protobuf::io::GzipOutputStream gz(&raw, o);
    if (!profile_->SerializeToZeroCopyStream(&gz) || !gz.Close())
      throw std::runtime_error("pprof: compressing the profile failed");
  }
  return out;
}

}  // namespace vmatrace
