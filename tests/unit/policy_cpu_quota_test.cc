// [resources] cpu_quota_us / cpu_period_us: parsed, range-checked, written back canonically
// only when a quota is set.
#include <gtest/gtest.h>

#include "rauha-common/policy/policy.h"

namespace rauha::policy {
namespace {

TEST(PolicyCpuQuota, ParsedAndWrittenBackOnlyWhenSet) {
  auto p = ParsePolicy("[resources]\ncpu_quota_us = 50000\ncpu_period_us = 200000\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->resources.cpu_quota_us, 50000u);
  EXPECT_EQ(p->resources.cpu_period_us, 200000u);
  std::string text = ToCanonicalToml(*p);
  EXPECT_NE(text.find("cpu_quota_us = 50000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cpu_period_us = 200000\n"), std::string::npos) << text;
  // The default has none, and its canonical text does not mention it.
  EXPECT_FALSE(DefaultPolicy().resources.cpu_quota_us.has_value());
  EXPECT_EQ(ToCanonicalToml(DefaultPolicy()).find("cpu_"),
            ToCanonicalToml(DefaultPolicy()).find("cpu_shares"));
  auto none = ParsePolicy("[resources]\ncpu_quota_us = \"max\"\n");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->resources.cpu_quota_us.has_value());
}

TEST(PolicyCpuQuota, OutOfRangeNamesTheKey) {
  for (const char* bad : {"[resources]\ncpu_quota_us = 10\n", "[resources]\ncpu_quota_us = \"x\"\n",
                          "[resources]\ncpu_period_us = 999\n"}) {
    auto p = ParsePolicy(bad, "p.toml");
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(p.status().message().find("resources.cpu_"), std::string::npos) << p.status();
  }
}

}  // namespace
}  // namespace rauha::policy
