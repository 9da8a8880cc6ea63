// IPv6 literals at the egress proxy: "CONNECT [::1]:443" and "http://[2001:db8::1]/" in the
// client's request head (RFC 3986 brackets), and "[2001:db8::1]:443" in allowed_hosts. The proxy
// then applies the same rules as to any address (tests/integration/egress_budget_test.cc has
// the refusal of loopback through a running proxy).
#include <gtest/gtest.h>

#include <string>

#include "rauha-common/strcat.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/egress/proxy_request.h"

namespace rauha::egress {
namespace {

TEST(ProxyRequestIpv6Test, ConnectTakesABracketedAddressCanonicalised) {
  auto r = ParseProxyRequest("CONNECT [2001:DB8:0:0::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_TRUE((*r)->is_connect);
  EXPECT_EQ((*r)->host, "2001:db8::1");
  EXPECT_EQ((*r)->port, 8443);
  auto loopback = ParseProxyRequest("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(loopback.ok() && loopback->has_value()) << loopback.status();
  EXPECT_EQ((*loopback)->host, "::1");
  EXPECT_EQ(HostPort((*loopback)->host, 443), "[::1]:443");
  auto mapped = ParseProxyRequest("CONNECT [::FFFF:127.0.0.1]:443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(mapped.ok() && mapped->has_value()) << mapped.status();
  EXPECT_EQ((*mapped)->host, "::ffff:127.0.0.1");
}

TEST(ProxyRequestIpv6Test, PlainRequestKeepsItsHostHeaderAndDefaultsToPort80) {
  auto r = ParseProxyRequest("GET http://[fd00::2]/a?b HTTP/1.1\r\nHost: [fd00::2]\r\n\r\n");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_EQ((*r)->host, "fd00::2");
  EXPECT_EQ((*r)->port, 80);
  EXPECT_EQ((*r)->upstream_head, "GET /a?b HTTP/1.1\r\nHost: [fd00::2]\r\n\r\n");
  auto port = ParseProxyRequest("GET http://[fd00::2]:8080 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(port.ok() && port->has_value()) << port.status();
  EXPECT_EQ((*port)->port, 8080);
  EXPECT_EQ((*port)->upstream_head, "GET / HTTP/1.1\r\n\r\n");
}

TEST(ProxyRequestIpv6Test, MalformedLiteralsAreRefused) {
  for (const char* bad : {
           "CONNECT ::1:443 HTTP/1.1\r\n\r\n",             // no brackets
           "CONNECT [::1] HTTP/1.1\r\n\r\n",               // no port
           "CONNECT [::1]: HTTP/1.1\r\n\r\n",              // empty port
           "CONNECT [::1]x:443 HTTP/1.1\r\n\r\n",          // text after ']'
           "CONNECT [::1:443 HTTP/1.1\r\n\r\n",            // unclosed
           "CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n",  // zone id
           "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\n\r\n",
           "CONNECT [example.com]:443 HTTP/1.1\r\n\r\n",  // not an address
           "CONNECT [10.0.0.1]:443 HTTP/1.1\r\n\r\n",     // IPv4 needs no brackets
           "CONNECT []:443 HTTP/1.1\r\n\r\n",
           "CONNECT a]b.com:443 HTTP/1.1\r\n\r\n",
           "CONNECT [1:2:3:4:5:6:7:8:9]:443 HTTP/1.1\r\n\r\n",
           "GET http://[::1/ HTTP/1.1\r\n\r\n",
           "GET http://user@[::1]/ HTTP/1.1\r\n\r\n",
       }) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseProxyRequest(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  auto message = ParseProxyRequest("CONNECT ::1:443 HTTP/1.1\r\n\r\n");
  EXPECT_NE(ToStd(message.status().message()).find("must be in brackets"), std::string::npos)
      << message.status();
}

TEST(AllowedHostsIpv6Test, BracketedAddressesAreRulesThatMatchTheCanonicalText) {
  auto p = policy::ParsePolicy("[network]\nallowed_hosts = [\"[2001:DB8::0:1]:443\", \"[::1]\"]\n",
                               "t.toml");
  ASSERT_TRUE(p.ok()) << p.status();
  const auto& h = p->network.allowed_hosts;
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].text, "[2001:db8::1]:443");
  EXPECT_EQ(h[0].host, "2001:db8::1");
  EXPECT_EQ(h[0].port, 443);
  EXPECT_EQ(h[1].text, "[::1]");
  EXPECT_EQ(h[1].port, 0);
  // What the proxy compares: the parsed CONNECT host against the rule's host.
  auto r = ParseProxyRequest("CONNECT [2001:db8:0::1]:443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_TRUE(policy::HostRuleAllows(h[0], (*r)->host, (*r)->port));
  EXPECT_FALSE(policy::HostRuleAllows(h[0], (*r)->host, 80));
  EXPECT_TRUE(policy::HostRuleAllows(h[1], "::1", 80));
  // Canonical text reads back the same.
  auto again = policy::ParsePolicy(policy::ToCanonicalToml(*p), "canonical.toml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->network.allowed_hosts[0].text, "[2001:db8::1]:443");
}

TEST(AllowedHostsIpv6Test, BadLiteralsSayWhatToWrite) {
  for (const auto& [entry, needle] : std::vector<std::pair<std::string, std::string>>{
           {"2001:db8::1", "without brackets"},
           {"[2001:db8::1", "without ']'"},
           {"[2001:db8::1]x", "after ']'"},
           {"[2001:db8::1]:0", "port"},
           {"[2001:db8::1]:", "port"},
           {"[pypi.org]:443", "do not hold an IPv6 address"},
           {"[]", "do not hold an IPv6 address"},
       }) {
    SCOPED_TRACE(entry);
    auto rule = policy::ParseHostRule(entry);
    ASSERT_FALSE(rule.ok()) << rule->text;
    std::string m = ToStd(rule.status().message());
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_NE(m.find("[2001:db8::1]:443"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace rauha::egress
