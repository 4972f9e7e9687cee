#pragma once
// `vmatrace report FILE --html OUT`, the page: the self-contained HTML file
// (template, CSS, d3 and the page's code, embedded at build time) around the
// model's data. The model is report/timeline_model.h, its JSON
// report/timeline_data.h.

#include <string>

#include "report/timeline_data.h"
#include "report/timeline_model.h"

namespace vmatrace {

// The whole self-contained page around timeline_json(m).
std::string timeline_html(const TimelineModel& m);

}  // namespace vmatrace
