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

// A name with a newline forged rows of `rauha zone list`; one with ESC drove the terminal.
TEST(ZoneNameTest, RefusesControlCharacters) {
  for (const std::string& name : {std::string("a\nb"), std::string("\x1b[2Jcleared"),
                                  std::string("tab\there"), std::string("del\x7f"),
                                  std::string("c1\xc2\x9b"
                                              "2J"),
                                  std::string("nel\xc2\x85")}) {
    auto st = ValidateZoneName(name);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("control character U+"), absl::string_view::npos) << st.message();
  }
  // U+00A0 and above are printable (the C1 range ends at U+009F).
  EXPECT_TRUE(ValidateZoneName("no\xc2\xa0" "break").ok());
  EXPECT_EQ(FindControlCharacter("ab\x1b"), "U+001B at byte 2");
  EXPECT_EQ(FindControlCharacter("x\xc2\x9b"), "U+009B at byte 1");
  EXPECT_EQ(FindControlCharacter("plain ünïcødé"), "");
  EXPECT_EQ(RefuseControlCharacters("workdir", "/a\nb").code(), absl::StatusCode::kInvalidArgument);
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
