#pragma once
// Text formatting shared by every output: hex numbers, human sizes, and
// escaping of strings that came from the kernel or a recording (paths,
// comm) so that nothing can end a line or inject terminal escapes.

#include <cstdint>
#include <string>
#include <string_view>

namespace vmatrace {

std::string hex(uint64_t v);             // "0x7f3c2a000000"
std::string human_size(uint64_t bytes);  // "4.0 KiB", "12 B", "1.5 MiB"
// human_size() written at p (at most kHumanSizeMax bytes): the end.
inline constexpr size_t kHumanSizeMax = 24;
char* put_human_size(char* p, uint64_t bytes);

// Control characters, backslash and invalid UTF-8 made visible (\n, \t,
// \xNN); valid UTF-8 kept.
std::string escape_text(std::string_view s);
void append_text_escaped(std::string& out, std::string_view s);  // escape_text, appended
// JSON string contents (without the surrounding quotes): RFC 8259 escapes,
// invalid UTF-8 bytes as \ufffd.
std::string escape_json(std::string_view s);
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace vmatrace
