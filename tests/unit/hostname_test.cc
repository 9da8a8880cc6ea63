#include "rauha-common/hostname.h"

#include <gtest/gtest.h>

#include <string>

namespace rauha {
namespace {

TEST(ZoneHostnameTest, AValidLabelIsTheHostname) {
  for (const std::string& name : {std::string("a"), std::string("web-1"), std::string("Build7"),
                                  std::string("1zone"), std::string(63, 'x')}) {
    EXPECT_TRUE(IsHostnameLabel(name)) << name;
    EXPECT_EQ(ZoneHostname(name), name);
  }
}

TEST(ZoneHostnameTest, OtherNamesGetADerivedLabelNeverACut) {
  std::string h = ZoneHostname("my_zone.v2");
  EXPECT_TRUE(IsHostnameLabel(h)) << h;
  EXPECT_EQ(h.substr(0, 11), "my-zone-v2-") << h;
  EXPECT_EQ(h.size(), 19u) << h;

  // 64 and 128 characters: cut names would collide, derived ones do not.
  std::string a = std::string(63, 'x') + "a", b = std::string(63, 'x') + "b";
  EXPECT_NE(ZoneHostname(a), ZoneHostname(b));
  EXPECT_TRUE(IsHostnameLabel(ZoneHostname(a)));
  EXPECT_TRUE(IsHostnameLabel(ZoneHostname(std::string(128, 'y'))));
  EXPECT_LE(ZoneHostname(std::string(128, 'y')).size(), kMaxHostnameLabel);

  for (const std::string& name :
       {std::string("-lead"), std::string("trail-"), std::string("zone with spaces"),
        std::string("ünïcødé"), std::string("..."), std::string("a.b"), std::string("--")}) {
    std::string derived = ZoneHostname(name);
    EXPECT_TRUE(IsHostnameLabel(derived)) << name << " -> " << derived;
    EXPECT_EQ(ZoneHostname(name), derived) << "stable";
  }
  EXPECT_EQ(ZoneHostname("...").substr(0, 5), "zone-");
  EXPECT_EQ(ZoneHostname("zone with spaces").substr(0, 17), "zone-with-spaces-");
  EXPECT_NE(ZoneHostname("a.b"), ZoneHostname("a_b"));
}

}  // namespace
}  // namespace rauha

namespace rauha {
namespace {

TEST(IsHostname, LabelsJoinedByDotsUpToTheKernelsLimit) {
  EXPECT_TRUE(IsHostname("pod-1"));
  EXPECT_TRUE(IsHostname("node1.example.com"));
  EXPECT_TRUE(IsHostname(std::string(63, 'a')));
  EXPECT_TRUE(IsHostname(std::string(32, 'a') + "." + std::string(31, 'b')));
  EXPECT_FALSE(IsHostname(std::string(32, 'a') + "." + std::string(32, 'b')));  // 65 bytes
  EXPECT_FALSE(IsHostname(""));
  EXPECT_FALSE(IsHostname("a..b"));
  EXPECT_FALSE(IsHostname(".a"));
  EXPECT_FALSE(IsHostname("a."));
  EXPECT_FALSE(IsHostname("not_a_label"));
  EXPECT_FALSE(IsHostname("-a.b"));
}

}  // namespace
}  // namespace rauha
