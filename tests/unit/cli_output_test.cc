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
