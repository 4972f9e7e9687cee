// src/util/json.h: the one JSON writer (commas, escaping, numbers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "util/json.h"
#include "util/text.h"

namespace vmatrace {
namespace {

TEST(JsonWriter, PlacesCommasInNestedContainers) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().kv("a", 1).key("b").begin_array().value(2).value("x").begin_object().end_object().end_array();
  w.kv("c", true).key("d").null().end_object();
  EXPECT_EQ(out, R"({"a":1,"b":[2,"x",{}],"c":true,"d":null})");
}

TEST(JsonWriter, EscapesControlCharactersAndInvalidUtf8) {
  std::string out;
  JsonWriter w(out);
  w.begin_array().value(std::string_view("a\"b\\c\n\t\x01\x7f\xff\xc3\xa9", 12)).end_array();
  EXPECT_EQ(out, "[\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\\ufffd\xc3\xa9\"]");
  EXPECT_EQ(json_quote("k\x1b"), "\"k\\u001b\"");
}

TEST(JsonWriter, IntegersHexAndDoubles) {
  std::string out;
  JsonWriter w(out);
  w.begin_array().value(int64_t{-5}).value(UINT64_MAX).hex(0x7f00).value(0.25, "%.4f").value(NAN).raw("[1]");
  w.end_array();
  EXPECT_EQ(out, R"([-5,18446744073709551615,"0x7f00",0.2500,null,[1]])");
}

TEST(TextEscape, KeepsUtf8AndShowsEverythingElse) {
  EXPECT_EQ(escape_text("a\\b\nc\td\x01\xc3\xa9\xff"), "a\\\\b\\nc\\td\\x01\xc3\xa9\\xff");
  EXPECT_EQ(human_size(1536), "1.5 KiB");
  EXPECT_EQ(hex(255), "0xff");
}

}  // namespace
}  // namespace vmatrace
