#pragma once
// One line per record, as stored: what `replay --records` prints to show
// what a recording holds (the kernel's VMA stores included, which the event
// view folds into each syscall's changes). For debugging the tool and for
// users asking "what exactly did the kernel report?".

#include <string>

#include "core/records.h"

namespace vmatrace {

std::string dump_record(const DecodedRecord& rec);

}  // namespace vmatrace
