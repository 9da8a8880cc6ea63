#include "rauha-common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace rauha {
namespace {

TEST(Utf8Test, ValidTextIsKeptAsIs) {
  for (const std::string& s : {std::string(""), std::string("plain"), std::string("ünïcødé €𝄞"),
                               std::string("nul\0inside", 10)}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(ToValidUtf8(s), s);
  }
}

TEST(Utf8Test, InvalidBytesBecomeReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_EQ(ToValidUtf8("a\xff"
                        "b"),
            "a" + fffd + "b");
  // Overlong, surrogate, above U+10FFFF, lone continuation.
  for (const std::string& bad : {std::string("\xC0\x80"), std::string("\xED\xA0\x80"),
                                 std::string("\xF4\x90\x80\x80"), std::string("\x80")}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad.size();
    EXPECT_TRUE(IsValidUtf8(ToValidUtf8(bad)));
  }
  // A cut-short sequence is one maximal subpart: one U+FFFD, and the next character survives.
  EXPECT_EQ(ToValidUtf8("\xE2\x82"
                        "x"),
            fffd + "x");
}

TEST(Utf8Test, IncompleteTailIsRecognised) {
  std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(WithoutIncompleteTail("ab" + euro), 5u);
  EXPECT_EQ(WithoutIncompleteTail("ab" + euro.substr(0, 2)), 2u);
  EXPECT_EQ(WithoutIncompleteTail("ab" + euro.substr(0, 1)), 2u);
  EXPECT_EQ(WithoutIncompleteTail("ab\xff"), 3u) << "invalid, not incomplete";
  EXPECT_EQ(WithoutIncompleteTail(""), 0u);
}

}  // namespace
}  // namespace rauha
