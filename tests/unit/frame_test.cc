#include "rauha-common/frame.h"

#include <gtest/gtest.h>

namespace rauha::frame {
namespace {

TEST(FrameTest, RoundTripsAnObject) {
  auto encoded = Encode({{"id", 1}, {"method", "hello"}});
  ASSERT_TRUE(encoded.ok());
  Decoder d;
  d.Feed(*encoded);
  auto next = d.Next();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((**next)["method"], "hello");
}

}  // namespace
}  // namespace rauha::frame
