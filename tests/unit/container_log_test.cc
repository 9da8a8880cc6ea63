// The container log's record format (CRI): what the shim writes is what rauhad reads back,
// partial pieces flagged, and anything else refused rather than misread.
#include "rauha-common/container_log.h"

#include <gtest/gtest.h>

namespace rauha {
namespace {

TEST(ContainerLogTest, RecordsRoundTrip) {
  std::string line = FormatLogRecord(1764509977123456789, true, false, "an error: x y");
  EXPECT_EQ(line, "2025-11-30T13:39:37.123456789Z stderr F an error: x y\n");
  auto r = ParseLogRecord(line);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->timestamp, "2025-11-30T13:39:37.123456789Z");
  EXPECT_TRUE(r->is_stderr);
  EXPECT_FALSE(r->partial);
  EXPECT_EQ(r->text, "an error: x y");
  auto piece = ParseLogRecord(FormatLogRecord(0, false, true, ""));
  ASSERT_TRUE(piece.has_value());
  EXPECT_FALSE(piece->is_stderr);
  EXPECT_TRUE(piece->partial);
  EXPECT_EQ(piece->text, "");
}

TEST(ContainerLogTest, ForeignLinesAreRefused) {
  for (const char* bad :
       {"", "no-spaces", "2025-11-30T13:39:37Z stdin F x", "2025-11-30T13:39:37Z stdout X x",
        "2025-11-30T13:39:37Z stdout F", " stdout F x"}) {
    EXPECT_FALSE(ParseLogRecord(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace rauha
