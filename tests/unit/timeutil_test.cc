#include "rauha-common/timeutil.h"

#include <gtest/gtest.h>

namespace rauha {
namespace {

TEST(TimeutilTest, Rfc3339RoundTrips) {
  for (int64_t nanos : {int64_t{0}, int64_t{1764516000123456789}, NowUnixNanos()}) {
    EXPECT_EQ(NanosFromRfc3339(Rfc3339FromNanos(nanos)), nanos);
  }
  EXPECT_EQ(NanosFromRfc3339("2026-11-30T13:39:37Z"), int64_t{1796045977} * 1000000000);
}

TEST(TimeutilTest, OtherFormsAreRefused) {
  for (const char* text : {"", "yesterday", "2026-11-30T13:39:37", "2026-11-30T13:39:37.12Z",
                           "2026-11-30T13:39:37+01:00", "2026-11-30T13:39:37.12345678xZ"}) {
    EXPECT_EQ(NanosFromRfc3339(text), -1) << text;
  }
}

}  // namespace
}  // namespace rauha
