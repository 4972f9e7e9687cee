#include "output/printer.h"

#include "core/pmap.h"
#include "core/proc_maps.h"
#include "util/json.h"
#include "util/text.h"

namespace vmatrace {

Printer::Printer(std::FILE* out, PrinterOptions opts) : out_(out), opts_(opts) {}

Printer::~Printer() { flush(); }

void Printer::flush() {
  if (!buf_.empty()) {
    std::fwrite(buf_.view().data(), 1, buf_.size(), out_);
    buf_.clear();
  }
  std::fflush(out_);
}

bool Printer::wanted(const DecodedRecord& rec) const {
  if (opts_.pid && rec.hdr.pid != *opts_.pid) return false;
  if (opts_.since && rec.hdr.ts < *opts_.since) return false;
  if (opts_.until && rec.hdr.ts > *opts_.until) return false;
  return true;
}

void Printer::write() {
  // Encoded straight into the output buffer: no copy of the line.
  if (opts_.format == OutputFormat::kJson) {
    json_.encode(fields_, buf_);
  } else {
    text_.set_base_ts(base_ts_);
    text_.encode(fields_, buf_);
  }
  buf_ << '\n';
  printed_++;
  if (buf_.size() > (1 << 16)) {
    std::fwrite(buf_.view().data(), 1, buf_.size(), out_);
    buf_.clear();
  }
}

void Printer::derived(const DecodedRecord& rec, std::string_view event, const FieldList& fields) {
  if (!opts_.events || !wanted(rec)) return;
  if (base_ts_ == 0) base_ts_ = rec.hdr.ts;
  fields_.clear();
  // A derived event (a malloc growth) follows the record it came from.
  EventFields::header(rec, fields_, rec.hdr.tid == last_ns_tid_ ? last_ns_ : NsIdsRecord{});
  fields_.name("event", event, " ");
  fields_.literal(" ");
  fields_.append(fields);
  write();
}

void Printer::on_record(const DecodedRecord& rec, const Applied& applied, const ProcessState* proc) {
  if (rec.type == VMAT_REC_NOTE) {
    if (rec.note->key == kNoteSessionStart) base_ts_ = rec.hdr.ts;
    return;
  }
  if (base_ts_ == 0) base_ts_ = rec.hdr.ts;
  // Exec walks are folded into their exec line.
  if (rec.type == VMAT_EV_VMA_SNAPSHOT && !(rec.snap.flags & VMAT_SNAP_LAST)) return;
  last_ns_tid_ = rec.hdr.tid;
  last_ns_ = applied.ns;
  if (!opts_.events || !wanted(rec)) return;
  fields_.clear();
  events_.record(rec, applied, proc ? &proc->layout : nullptr, fields_);
  write();
}

std::string Printer::maps_block(const ProcessState& p, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::string s;
    JsonWriter w(s);
    w.begin_object().kv("event", "maps").kv("pid", p.pid).kv("comm", p.comm).kv("maps", format_proc_maps(p.layout));
    w.end_object();
    s += '\n';
    return s;
  }
  std::string s = "# maps of " + std::to_string(p.pid) + " (" + escape_text(p.comm) + ")" +
                  (p.seeded ? "" : " [layout unknown]") + "\n";
  s += format_proc_maps(p.layout);
  return s;
}

void Printer::on_process_end(const ProcessState& p) {
  if (!opts_.maps_at_end && !opts_.pmap_at_end) return;
  if (opts_.pid && p.pid != *opts_.pid) return;
  if (opts_.maps_at_end) buf_ << maps_block(p, opts_.format);
  if (opts_.pmap_at_end && p.seeded) {
    buf_ << "# pmap of " << std::to_string(p.pid) << " (" << escape_text(p.comm) << ")\n";
    buf_ << pmap_text(p.layout, p.exe);
  }
  flush();
}

}  // namespace vmatrace
