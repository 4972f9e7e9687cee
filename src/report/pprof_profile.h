#pragma once
// `vmatrace report FILE --pprof OUT.pb.gz`: malloc growth (and page faults)
// as a pprof profile (github.com/google/pprof proto/profile.proto, the subset
// in src/report/proto/pprof.proto), gzipped as pprof, Pyroscope and Parca
// read it.
//
// Sample types, in this order: growth/bytes and growth/count (one sample per
// call stack and allocator, the stack from the call site outwards, so
// pprof's flat column per function is `report --malloc`'s bytes per call
// site), then, with faults, faults/count (one sample per faulting ip, with a
// "fault" label: minor, major or unknown). The type names carry the unit
// because pprof picks a sample type by name (-sample_index=growth/bytes).

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/layout.h"
#include "core/malloc_attribution.h"

namespace vmatrace {

namespace pprof {
class Profile;
}

class PprofBuilder {
 public:
  explicit PprofBuilder(bool with_faults);
  ~PprofBuilder();
  PprofBuilder(const PprofBuilder&) = delete;
  PprofBuilder& operator=(const PprofBuilder&) = delete;

  // The GNU build id of the file at `path` (the recording's "object" notes).
  void set_build_id(const std::string& path, const std::string& build_id);
  // One growth; `layout` (may be null) is its process's layout then, for
  // the Mapping of each frame.
  void add_growth(const MallocGrowth& g, const Layout* layout);
  // One page fault at user ip (major/minor: as the kernel accounted it;
  // neither: unknown).
  void add_fault(uint64_t ip, bool major, bool minor, const Layout* layout);
  // The recording's first and last moments (CLOCK_MONOTONIC ns).
  void set_time(uint64_t start_ns, uint64_t end_ns);

  uint64_t growth_samples() const { return growth_samples_; }
  uint64_t fault_samples() const { return fault_samples_; }
  // The profile, serialized and gzipped.
  std::string gzipped();

 private:
  int64_t str(const std::string& s);
  uint64_t mapping_for(uint64_t pc, const Layout* layout);
  uint64_t function_for(const std::string& name, const std::string& system_name, const std::string& file);
  uint64_t location_for(uint64_t pc, const Layout* layout, const std::string& function, const std::string& system_name,
                        const std::string& file, int line);
  // Adds the values to the sample of (locations, label); true when that
  // sample is new.
  bool add_sample(std::vector<uint64_t> locations, const std::string& label_key, const std::string& label_value,
                  std::initializer_list<std::pair<int, int64_t>> values);

  std::unique_ptr<pprof::Profile> profile_;
  bool with_faults_;
  std::map<std::string, int64_t> strings_;
  std::map<std::string, std::string> build_ids_;
  std::map<std::tuple<uint64_t, uint64_t, uint64_t, std::string>, uint64_t> mappings_;  // start, end, offset, path
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> functions_;
  std::map<std::tuple<uint64_t, uint64_t, uint64_t, int>, uint64_t> locations_;  // mapping, pc, function, line
  // (locations, label value) -> index of its sample.
  std::map<std::pair<std::vector<uint64_t>, std::string>, int> samples_;
  uint64_t growth_samples_ = 0, fault_samples_ = 0;
};

}  // namespace vmatrace
