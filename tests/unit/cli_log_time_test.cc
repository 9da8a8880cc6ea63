// `rauha logs --since/--until` times: the forms docker accepts, and refusals for the rest.
#include <gtest/gtest.h>

#include "rauha-cli/log_time.h"

namespace rauha::cli {
namespace {

constexpr int64_t kS = 1000000000;
// 2026-11-30T16:20:28Z
constexpr int64_t kT = int64_t{1796055628} * kS;

TEST(LogTimeTest, Rfc3339InUtcWithAndWithoutFraction) {
  EXPECT_EQ(*ParseLogTime("2026-11-30T16:20:28Z", 0), kT);
  EXPECT_EQ(*ParseLogTime("2026-11-30T16:20:28.5Z", 0), kT + kS / 2);
  EXPECT_EQ(*ParseLogTime("2026-11-30T16:20:28.123456789Z", 0), kT + 123456789);
  EXPECT_EQ(*ParseLogTime("2026-11-30T16:20:28.1234567891Z", 0), kT + 123456789)
      << "digits below a nanosecond are cut";
}

TEST(LogTimeTest, NumericOffsetsAndDates) {
  EXPECT_EQ(*ParseLogTime("2026-11-30T18:20:28+02:00", 0), kT);
  EXPECT_EQ(*ParseLogTime("2026-11-30T15:20:28-01:00", 0), kT);
  EXPECT_EQ(*ParseLogTime("2026-11-30", 0), kT - (16 * 3600 + 20 * 60 + 28) * kS);
}

TEST(LogTimeTest, UnixSeconds) {
  EXPECT_EQ(*ParseLogTime("1796055628", 0), kT);
  EXPECT_EQ(*ParseLogTime("1796055628.25", 0), kT + kS / 4);
}

TEST(LogTimeTest, DurationsCountBackFromNow) {
  EXPECT_EQ(*ParseLogTime("10m", kT), kT - 600 * kS);
  EXPECT_EQ(*ParseLogTime("1h30m", kT), kT - 5400 * kS);
  EXPECT_EQ(*ParseLogTime("2.5s", kT), kT - 2500000000);
  EXPECT_EQ(*ParseLogTime("500ms", kT), kT - kS / 2);
}

TEST(LogTimeTest, RefusesWhatIsNoTime) {
  for (const char* bad :
       {"", "yesterday", "10x", "2026-13-01", "2026-11-30T25:00:00Z", "2026-11-30T16:20:28",
        "2026-11-30T16:20:28+0200", "h", "1.2.3s", "2999-01-01T00:00:00Z", "99999999999"}) {
    auto t = ParseLogTime(bad, kT);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_NE(t.status().message().find("RFC 3339"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace rauha::cli
