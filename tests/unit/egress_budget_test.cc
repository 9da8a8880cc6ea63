// [network] egress_bytes_max: the zone's egress byte budget as the policy parser reads, checks
// and writes it back. (The proxy's enforcement is tested against the kernel in
// tests/integration/egress_budget_test.cc.)
#include <gtest/gtest.h>

#include <string>

#include "rauha-common/strcat.h"
#include "rauha-common/policy/policy.h"

namespace rauha {
namespace {

TEST(EgressBudgetPolicy, DefaultIsUnboundedAndNotWritten) {
  EXPECT_FALSE(policy::DefaultPolicy().network.egress_bytes_max);
  EXPECT_EQ(policy::ToCanonicalToml(policy::DefaultPolicy()).find("egress_bytes_max"),
            std::string::npos);
}

TEST(EgressBudgetPolicy, BytesSizesAndMaxAreRead) {
  struct Case {
    std::string value;
    std::optional<uint64_t> bytes;
  } cases[] = {
      {"1048576", 1048576},
      {"\"64Ki\"", 64 * 1024},
      {"\"2G\"", 2000000000ull},
      {"\"max\"", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    std::string toml =
        "[network]\nallowed_hosts = [\"pypi.org\"]\negress_bytes_max = " + c.value + "\n";
    auto p = policy::ParsePolicy(toml, "t.toml");
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->network.egress_bytes_max, c.bytes);
    // Canonical text keeps the value as written and reads back the same.
    std::string canonical = policy::ToCanonicalToml(*p);
    if (c.bytes) {
      EXPECT_NE(canonical.find("egress_bytes_max = " +
                               (c.value.front() == '"' ? c.value : "\"" + c.value + "\"")),
                std::string::npos)
          << canonical;
    } else {
      EXPECT_EQ(canonical.find("egress_bytes_max"), std::string::npos) << canonical;
    }
    auto again = policy::ParsePolicy(canonical, "canonical.toml");
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << canonical;
    EXPECT_EQ(again->network.egress_bytes_max, c.bytes);
  }
}

TEST(EgressBudgetPolicy, BadValuesNameTheKeyAndWhereItIs) {
  struct Case {
    std::string value;
    std::string needle;
  } cases[] = {
      {"0", "at least 1 byte"},
      {"-5", "at least 1 byte"},
      {"true", "size string such as \"1Gi\""},
      {"[1]", "size string such as \"1Gi\""},
      {"\"10Qi\"", "unknown suffix"},
      {"\"\"", "is empty"},
      {"\"unlimited\"", "network.egress_bytes_max"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    auto p = policy::ParsePolicy("[network]\negress_bytes_max = " + c.value + "\n", "t.toml");
    ASSERT_FALSE(p.ok()) << policy::ToCanonicalToml(*p);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    std::string m = ToStd(p.status().message());
    EXPECT_EQ(m.rfind("t.toml:2:20: network.egress_bytes_max", 0), 0u) << m;
    EXPECT_NE(m.find(c.needle), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace rauha
