// Which --listen addresses rauhad serves, and how: the refusals a start-up must make before
// any port opens (issue 9, endpoints).
#include <gtest/gtest.h>

#include "rauhad/server/endpoints.h"

namespace rauha {
namespace {

TEST(ListenAddressTest, ParsesIpv4Ipv6AndLocalhost) {
  auto a = ParseHostPort("127.0.0.1:9876");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "9876");
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, "0");
  EXPECT_TRUE(ParseHostPort("localhost:1").ok());
}

TEST(ListenAddressTest, RefusesMalformedAddresses) {
  for (const char* bad : {"127.0.0.1", "::1:9876", "[::1]", "[::1]9876", ":9876", "[zz]:1",
                          "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", "127.0.0.1:"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("--listen ") + bad), std::string::npos)
        << r.status().message();
  }
}

TEST(ListenAddressTest, LoopbackIsOnly127Slash8AndColonColon1) {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1", "myhost",
                         "localhost.example", "::2"}) {
    EXPECT_FALSE(IsLoopbackHost(no)) << no;
  }
}

TEST(ListenPlanTest, LoopbackWithoutTlsNeedsTheFlag) {
  auto refused = PlanTcpListeners({"127.0.0.1:9876"}, {}, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--insecure-loopback"), std::string::npos);
  auto ok = PlanTcpListeners({"127.0.0.1:9876", "[::1]:9876"}, {}, true);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].address, "[::1]:9876");
  EXPECT_FALSE((*ok)[0].tls);
  EXPECT_TRUE((*ok)[0].loopback);
}

TEST(ListenPlanTest, NonLoopbackNeedsTls) {
  for (const char* addr : {"0.0.0.0:9876", "[::]:9876", "10.1.2.3:9876", "myhost:9876"}) {
    for (bool insecure : {false, true}) {
      auto r = PlanTcpListeners({addr}, {}, insecure);
      ASSERT_FALSE(r.ok()) << addr;
      EXPECT_NE(r.status().message().find("is not a loopback address"), std::string::npos)
          << r.status().message();
    }
  }
  TlsFiles tls{"c.pem", "k.pem", "ca.pem"};
  auto r = PlanTcpListeners({"0.0.0.0:9876", "127.0.0.1:1"}, tls, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*r)[0].tls);
  EXPECT_TRUE((*r)[1].tls);
}

TEST(ListenPlanTest, TlsFlagsComeTogetherAndExcludeInsecure) {
  auto partial = PlanTcpListeners({"0.0.0.0:1"}, TlsFiles{"c.pem", "", "ca.pem"}, false);
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.status().message().find("some are missing"), std::string::npos);
  auto both = PlanTcpListeners({"127.0.0.1:1"}, TlsFiles{"c", "k", "ca"}, true);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("exclude each other"), std::string::npos);
  auto none = PlanTcpListeners({}, TlsFiles{"c", "k", "ca"}, false);
  ASSERT_FALSE(none.ok());
  // No --listen and no TCP flags: the unix socket only.
  auto socket_only = PlanTcpListeners({}, {}, false);
  ASSERT_TRUE(socket_only.ok());
  EXPECT_TRUE(socket_only->empty());
}

}  // namespace
}  // namespace rauha
