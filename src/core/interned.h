#pragma once
// An immutable string held once for the whole program: a VMA's path, its
// special name and its anon name are one of a few hundred distinct strings
// repeated over thousands of VMAs and copied with every change the model
// reports. Interned, a copy is a pointer copy and equality a pointer
// comparison; the strings live until the program ends (their number is
// bounded by the distinct files and names a trace sees).

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>

namespace vmatrace {

class InternedString {
 public:
  InternedString() = default;
  // Explicit from strings, so that `cond ? vma.path : some_string` has one
  // meaning (a std::string); assignment from them is implicit.
  explicit InternedString(std::string_view s) : p_(s.empty() ? nullptr : intern(s)) {}
  explicit InternedString(const std::string& s) : InternedString(std::string_view(s)) {}
  InternedString(const char* s) : InternedString(std::string_view(s)) {}  // NOLINT: literals, as a string
  InternedString& operator=(std::string_view s) { return *this = InternedString(s); }
  InternedString& operator=(const std::string& s) { return *this = InternedString(s); }
  InternedString& operator=(const char* s) { return *this = InternedString(s); }

  const std::string& str() const { return p_ ? *p_ : empty_string(); }
  std::string_view view() const { return str(); }
  operator const std::string&() const { return str(); }  // NOLINT: reads as the string it is
  operator std::string_view() const { return view(); }   // NOLINT
  const char* c_str() const { return str().c_str(); }
  bool empty() const { return p_ == nullptr; }
  size_t size() const { return p_ ? p_->size() : 0; }
  char operator[](size_t i) const { return (*p_)[i]; }
  bool starts_with(std::string_view s) const { return view().starts_with(s); }
  bool ends_with(std::string_view s) const { return view().ends_with(s); }
  size_t find(std::string_view s, size_t pos = 0) const { return view().find(s, pos); }
  size_t find_first_not_of(std::string_view s, size_t pos = 0) const { return view().find_first_not_of(s, pos); }
  std::string substr(size_t pos, size_t n = std::string::npos) const { return str().substr(pos, n); }

  // One pointer per distinct string: equal strings are the same pointer.
  friend bool operator==(const InternedString& a, const InternedString& b) { return a.p_ == b.p_; }
  friend bool operator==(const InternedString& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const InternedString& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const InternedString& a, const char* b) { return a.view() == b; }
  friend auto operator<=>(const InternedString& a, const InternedString& b) { return a.view() <=> b.view(); }
  friend std::string operator+(const InternedString& a, std::string_view b) {
    std::string s(a.view());
    s += b;
    return s;
  }
  friend std::string operator+(std::string_view a, const InternedString& b) {
    std::string s(a);
    s += b.view();
    return s;
  }
  friend std::ostream& operator<<(std::ostream& os, const InternedString& s) { return os << s.view(); }

  // Distinct strings interned so far (for tests and memory accounting).
  static size_t pool_size();

 private:
  static const std::string* intern(std::string_view s);
  static const std::string& empty_string();
  const std::string* p_ = nullptr;
};

}  // namespace vmatrace

template <>
struct std::hash<vmatrace::InternedString> {
  size_t operator()(const vmatrace::InternedString& s) const noexcept {
    return std::hash<std::string_view>{}(s.view());
  }
};
