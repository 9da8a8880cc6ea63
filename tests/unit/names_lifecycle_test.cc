#include <gtest/gtest.h>

#include <vector>

#include "rauha-common/lifecycle.h"
#include "rauha-common/names.h"

namespace rauha {
namespace {

TEST(ZoneNameTest, AcceptsOrdinaryAndEdgeNames) {
  for (const std::string& name : std::vector<std::string>{
           "a", "web-1", "zone with spaces", "ünïcødé", "a.b", "...", std::string(128, 'x')}) {
    EXPECT_TRUE(ValidateZoneName(name).ok()) << name;
  }
}

TEST(ZoneNameTest, RefusesWhatTheApiRefuses) {
  for (const std::string& name :
       {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("/"),
        std::string("a\\b"), std::string("a\0b", 3), std::string(129, 'x')}) {
    auto st = ValidateZoneName(name);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("zone name"), absl::string_view::npos);
  }
}

TEST(LifecycleTest, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(ZoneState::kDestroying); ++i) {
    auto s = static_cast<ZoneState>(i);
    EXPECT_EQ(ZoneStateFromString(ToString(s)), s);
  }
  EXPECT_EQ(ToString(ZoneState::kReady), "Ready");
  EXPECT_FALSE(ZoneStateFromString("ready").has_value());
}

TEST(LifecycleTest, AllowedTransitions) {
  using S = ZoneState;
  EXPECT_TRUE(CanTransition(S::kCreating, S::kReady));
  EXPECT_TRUE(CanTransition(S::kCreating, S::kDestroying));
  EXPECT_TRUE(CanTransition(S::kReady, S::kRunning));
  EXPECT_TRUE(CanTransition(S::kRunning, S::kPaused));
  EXPECT_TRUE(CanTransition(S::kPaused, S::kRunning));
  EXPECT_TRUE(CanTransition(S::kRunning, S::kStopping));
  EXPECT_TRUE(CanTransition(S::kStopping, S::kStopped));
  EXPECT_TRUE(CanTransition(S::kStopped, S::kDestroying));
  EXPECT_TRUE(CanTransition(S::kRunning, S::kStopped)) << "a zone whose shim died";
}

TEST(LifecycleTest, RefusedTransitionsSayBothStates) {
  using S = ZoneState;
  EXPECT_FALSE(CanTransition(S::kCreating, S::kRunning));
  EXPECT_FALSE(CanTransition(S::kStopped, S::kRunning));
  EXPECT_FALSE(CanTransition(S::kDestroying, S::kReady));
  EXPECT_FALSE(CanTransition(S::kStopping, S::kRunning));
  auto st = CheckTransition(S::kStopped, S::kPaused);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("Stopped"), absl::string_view::npos);
  EXPECT_NE(st.message().find("Paused"), absl::string_view::npos);
}

}  // namespace
}  // namespace rauha
