#pragma once
// `vmatrace report FILE --html OUT`, the data: the timeline model
// (report/timeline_model.h) as the JSON object the page reads. Its shape is
// the page's contract (src/report/html/timeline.js, tests/html).

#include <string>

#include "report/timeline_model.h"

namespace vmatrace {

// The model as the JSON object the page reads.
std::string timeline_json(const TimelineModel& m);

}  // namespace vmatrace
