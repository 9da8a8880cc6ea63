// containerd's Update resources (LinuxResources JSON) and the zone policy they become.
#include <gtest/gtest.h>

#include "containerd-shim-rauha-v2/resources.h"
#include "rauha-common/policy/policy.h"

namespace rauha::cshim {
namespace {

TEST(CshimResources, ParsesWhatRauhaApplies) {
  auto u = ParseLinuxResources(R"({"memory": {"limit": 1048576, "swap": 5},
      "cpu": {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0-1"},
      "pids": {"limit": 10}, "blockIO": {}})");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->memory_limit_bytes, 1048576);
  EXPECT_EQ(u->cpu_shares, 512u);
  EXPECT_EQ(u->cpu_quota_us, 20000);
  EXPECT_EQ(u->cpu_period_us, 50000u);
  EXPECT_EQ(u->pids_limit, 10);
  // -1 (and pids 0) lift a limit; absent leaves it.
  auto lift = ParseLinuxResources(R"({"memory": {"limit": -1}, "pids": {"limit": 0},
      "cpu": {"quota": -1}})");
  ASSERT_TRUE(lift.ok());
  EXPECT_EQ(lift->memory_limit_bytes, kLift);
  EXPECT_EQ(lift->pids_limit, kLift);
  EXPECT_EQ(lift->cpu_quota_us, kLift);
  EXPECT_FALSE(lift->cpu_shares.has_value());
}

TEST(CshimResources, BadValuesNameTheField) {
  for (auto [json, field] : {std::pair{R"({"cpu": {"shares": 1}})", "cpu.shares"},
                             {R"({"cpu": {"quota": 10}})", "cpu.quota"},
                             {R"({"cpu": {"period": 5}})", "cpu.period"},
                             {R"({"memory": {"limit": "1G"}})", "memory.limit"},
                             {R"({"memory": {"limit": -7}})", "memory.limit"},
                             {R"({"pids": 3})", "pids"}}) {
    auto u = ParseLinuxResources(json);
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_NE(u.status().message().find(field), std::string::npos) << u.status();
  }
  EXPECT_EQ(ParseLinuxResources("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CshimResources, UpdateBecomesThePolicysResources) {
  std::string base = policy::ToCanonicalToml(policy::DefaultPolicy());
  ResourceUpdate u;
  u.memory_limit_bytes = 64 << 20;
  u.cpu_shares = 300;
  u.cpu_quota_us = 25000;
  u.pids_limit = 42;
  auto text = ApplyToPolicy(base, u);
  ASSERT_TRUE(text.ok()) << text.status();
  auto p = policy::ParsePolicy(*text);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->resources.memory_limit_bytes, uint64_t{64} << 20);
  EXPECT_EQ(p->resources.cpu_shares, 300u);
  EXPECT_EQ(p->resources.cpu_quota_us, 25000u);
  EXPECT_EQ(p->resources.cpu_period_us, 100000u);
  EXPECT_EQ(p->resources.pids_max, 42u);
  // Everything else stays as it was.
  EXPECT_EQ(p->capabilities.allowed, policy::DefaultPolicy().capabilities.allowed);
  ResourceUpdate lift;
  lift.cpu_quota_us = kLift;
  lift.pids_limit = kLift;
  lift.memory_limit_bytes = kLift;
  auto lifted = policy::ParsePolicy(*ApplyToPolicy(*text, lift));
  ASSERT_TRUE(lifted.ok());
  EXPECT_FALSE(lifted->resources.cpu_quota_us.has_value());
  EXPECT_FALSE(lifted->resources.pids_max.has_value());
  EXPECT_FALSE(lifted->resources.memory_limit_bytes.has_value());
}

}  // namespace
}  // namespace rauha::cshim
