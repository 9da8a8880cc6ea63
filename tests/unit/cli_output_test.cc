// The CLI's tables and JSON text.
#include "rauha-cli/output.h"

#include <gtest/gtest.h>

namespace rauha::cli {
namespace {

TEST(CliTableTest, AlignsColumnsWithTwoSpaces) {
  Table t({"NAME", "ID", "STATE"});
  t.AddRow({"frontend", "z-1", "Ready"});
  t.AddRow({"db", "z-12345", "Running"});
  EXPECT_EQ(t.ToString(),
            "NAME      ID       STATE\n"
            "frontend  z-1      Ready\n"
            "db        z-12345  Running\n");
}

TEST(CliTableTest, EmptyTableIsTheHeaderOnly) {
  Table t({"NAME", "ID"});
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.ToString(), "NAME  ID\n");
}

TEST(CliTableTest, ShortRowsLeaveNoTrailingSpaces) {
  Table t({"A", "B", "C"});
  t.AddRow({"x"});
  t.AddRow({"long", "", ""});
  EXPECT_EQ(t.ToString(), "A     B  C\nx\nlong\n");
}

// Names and other daemon-supplied strings cannot forge rows or send escape sequences.
TEST(CliPrintableTest, EscapesControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(Printable("web-1 ünïcødé"), "web-1 ünïcødé");
  EXPECT_EQ(Printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(Printable("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(Printable("del\x7f"), "del\\x7f");
  EXPECT_EQ(Printable("csi\xc2\x9b"
                      "2J"),
            "csi\\u009b2J");
  EXPECT_EQ(Printable("bad\xff\xc3"), "bad\\xff\\xc3");
  EXPECT_EQ(Printable("two\nlines", /*keep_newlines=*/true), "two\nlines");
}

TEST(CliTableTest, CellsCannotForgeRows) {
  Table t({"NAME", "STATE"});
  t.AddRow({"evil\nforged      Ready", "Ready"});
  EXPECT_EQ(t.ToString(),
            "NAME                     STATE\n"
            "evil\\nforged      Ready  Ready\n");
}

TEST(CliJsonTest, DelAndC1AreEscaped) {
  EXPECT_EQ(DumpJson(Json("a\x7f\xc2\x9b\x1b"), -1), "\"a\\u007f\\u009b\\u001b\"");
}

TEST(CliKeyValuesTest, AlignsValues) {
  EXPECT_EQ(KeyValues({{"name", "a"}, {"shim pid", "12"}}),
            "name:      a\n"
            "shim pid:  12\n");
}

TEST(CliHumanBytesTest, UsesBinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{4} << 30), "4.0 GiB");
}

TEST(CliDumpJsonTest, OneLineForJsonLines) {
  EXPECT_EQ(DumpJson(Json{{"a", 1}, {"b", "x"}}, -1), R"({"a":1,"b":"x"})");
}

}  // namespace
}  // namespace rauha::cli
