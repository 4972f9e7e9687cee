#include "report/html_report.h"

#include <cctype>
#include <stdexcept>

#include "report/html_assets.h"

namespace vmatrace {

namespace {

// Inside <script>, "</" could end the element early: JSON allows "\/".
std::string script_safe(std::string s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '<' && i + 1 < s.size() && (s[i + 1] == '/' || s[i + 1] == '!')) {
      out += "\\u003c";
      continue;
    }
    out += s[i];
  }
  return out;
}

// Inside a <script> element only "</script" ends it early: in JS strings
// and regular expressions "<\/" means the same.
std::string script_safe_js(std::string s) {
  for (size_t at = 0; (at = s.find("</", at)) != std::string::npos; at += 3) {
    std::string tag = s.substr(at + 2, 6);
    for (auto& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tag == "script") s.replace(at, 2, "<\\/");
  }
  return s;
}

void replace_once(std::string& s, const std::string& what, const std::string& with) {
  auto at = s.find(what);
  if (at == std::string::npos) throw std::logic_error("html template lacks " + what);
  s.replace(at, what.size(), with);
}

}  // namespace

std::string timeline_html(const TimelineModel& m) {
  std::string page(html_assets::kTemplate);
  // Library and page code go in first, the data last: the data is the only
  // part that comes from the recording, and nothing is substituted in it.
  replace_once(page, "/*@CSS@*/", std::string(html_assets::kCss));
  replace_once(page, "/*@D3@*/", script_safe_js(std::string(html_assets::kD3)));
  replace_once(page, "/*@JS@*/", script_safe_js(std::string(html_assets::kJs)));
  replace_once(page, "/*@DATA@*/", script_safe(timeline_json(m)));
  return page;
}

}  // namespace vmatrace
