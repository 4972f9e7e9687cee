#pragma once
// One exception type for errors the user can act on: main() prints its
// message as a single line and exits non-zero.

#include <stdexcept>
#include <string>

namespace vmatrace {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& msg, int exit_code = 1) : std::runtime_error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

}  // namespace vmatrace
