#pragma once
// Turns applied records into the user-visible stream: one text line or one
// JSON object per event, and /proc/PID/maps blocks when processes end. It is
// a RecordSink of the Processor, so live tracing and replay share it.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "core/processor.h"
#include "output/event_fields.h"
#include "output/fields.h"
#include "output/out_buffer.h"

namespace vmatrace {

enum class OutputFormat { kText, kJson };

struct PrinterOptions {
  OutputFormat format = OutputFormat::kText;
  bool events = true;             // print the event stream
  bool maps_at_end = false;       // --maps: layout when a process ends
  bool pmap_at_end = false;       // --pmap: pmap-style view (core/pmap.h) when a process ends
  std::optional<uint32_t> pid;    // only this process
  std::optional<uint64_t> since;  // absolute ts window
  std::optional<uint64_t> until;
};

class Printer : public RecordSink {
 public:
  Printer(std::FILE* out, PrinterOptions opts);
  ~Printer() override;
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  void on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) override;
  void on_process_end(const ProcessState& p) override;
  // The event stream shows derived changes; the layouts at the end do not.
  bool wants_derived() const override { return opts_.events; }
  // An event derived from `rec` by an analysis (malloc attribution), printed
  // under it with rec's time, pid, tid and comm, then `event` and `fields`
  // (e.g. report/malloc_report.h's growth_fields()).
  void derived(const DecodedRecord& rec, std::string_view event, const FieldList& fields);
  OutputFormat format() const { return opts_.format; }
  void flush();
  uint64_t printed() const { return printed_; }

  // One process's layout in /proc/PID/maps format, with a header line.
  static std::string maps_block(const ProcessState& p, OutputFormat format);

 private:
  bool wanted(const DecodedRecord& rec) const;
  // Encodes fields_ as one line (text: with its change lines) at the end of
  // buf_, written out when it holds more than 64 KiB.
  void write();

  std::FILE* out_;
  PrinterOptions opts_;
  uint64_t base_ts_ = 0;
  // The namespace ids of the last record seen, for the events derived from it.
  uint32_t last_ns_tid_ = 0;
  NsIdsRecord last_ns_;
  uint64_t printed_ = 0;
  OutBuffer buf_;
  FieldList fields_;    // reused for each event
  EventFields events_;  // makes them (and caches the names of values)
  TextEncoder text_;
  JsonEncoder json_;
};

}  // namespace vmatrace
