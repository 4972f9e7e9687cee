// src/output/fields.h, event_fields.h: one field list per event, walked by
// the text and the JSON encoder; core/record_types.h: the record names.
#include <gtest/gtest.h>

#include <string>

#include "core/record_types.h"
#include "output/event_fields.h"
#include "output/fields.h"

namespace vmatrace {
namespace {

TEST(RecordTypes, OneNameForEachRecordType) {
  EXPECT_STREQ(record_type_name(VMAT_EV_VMA_SNAPSHOT), "exec_vma");
  EXPECT_STREQ(record_type_name(VMAT_REC_LOSS), "lost");
  EXPECT_STREQ(record_type_name(VMAT_EV_FAULT), "fault");
  EXPECT_STREQ(record_type_name(0x7777), "unknown");
}

TEST(FieldEncoders, EachShowsItsFieldsInItsOwnWay) {
  FieldList f;
  f.u64("n", 7, "n=");
  f.number(FieldType::kSize, "len", 8192, ", ");
  f.number(FieldType::kPtr, "addr", 0, " at ");
  f.str("path", "a\"b\n", " ");
  f.boolean("kernel", true, " kernel");
  f.boolean("shared", false, " shared");
  f.literal(" (text only)");
  f.null("site");
  f.begin_array("stack");
  f.number(FieldType::kHex, {}, 0x10, {}, kInJson);
  f.end_array();
  std::string text, json;
  TextEncoder().encode(f, text);
  JsonEncoder().encode(f, json);
  EXPECT_EQ(text, "n=7, 8192 [8.0 KiB] at NULL a\"b\\n kernel (text only)");
  EXPECT_EQ(json, R"({"n":7,"len":8192,"addr":"0x0","path":"a\"b\n","kernel":true,"shared":false,"site":null,)"
                  R"("stack":["0x10"]})");
}

TEST(EventFields, SyscallArgumentsComeFromTheSyscallTable) {
  DecodedRecord rec;
  rec.type = VMAT_EV_SYSCALL;
  rec.hdr.ts = 5'000'001'000;
  rec.hdr.pid = 10;
  rec.hdr.tid = 11;
  rec.comm = "app";
  rec.sys.sys = VMAT_SYS_MREMAP;
  rec.sys.args[0] = 0x7f0000000000;
  rec.sys.args[1] = 4096;
  rec.sys.args[2] = 8192;
  rec.sys.args[3] = 3;  // MREMAP_MAYMOVE|MREMAP_FIXED: new_addr is shown
  rec.sys.args[4] = 0x7f1000000000;
  rec.sys.ret = -12;
  rec.sys.enter_ts = rec.hdr.ts - 500;
  EventFields events;
  FieldList f;
  events.record(rec, Applied{}, nullptr, f);
  std::string text, json;
  TextEncoder t;
  t.set_base_ts(5'000'000'000);
  t.encode(f, text);
  JsonEncoder().encode(f, json);
  EXPECT_EQ(text,
            "    0.000001 10/11 app mremap(0x7f0000000000, 4096 [4.0 KiB], 8192 [8.0 KiB], "
            "MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f1000000000) = -1 ENOMEM");
  EXPECT_EQ(json, R"({"ts":5000001000,"pid":10,"tid":11,"comm":"app","event":"mremap","old_addr":"0x7f0000000000",)"
                  R"("old_len":4096,"new_len":8192,"flags":"MREMAP_MAYMOVE|MREMAP_FIXED","new_addr":"0x7f1000000000",)"
                  R"("error":"ENOMEM","duration_ns":500})");
}

}  // namespace
}  // namespace vmatrace
