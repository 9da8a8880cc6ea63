// The egress proxy's pure parts: [network] allowed_hosts, the client's request head, the TLS
// ClientHello's server name (made by OpenSSL, as a real client sends it), the hosts file and
// the destinations the proxy never reaches.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include <string>

#include "rauha-common/policy/policy.h"
#include "rauhad/egress/destination_guard.h"
#include "rauhad/egress/proxy_request.h"
#include "rauhad/egress/resolver.h"
#include "rauhad/egress/tls_sni.h"

namespace rauha::egress {
namespace {

using policy::HostRule;
using policy::HostRuleAllows;
using policy::ParseHostRule;

TEST(AllowedHostsTest, ParsesNamesWildcardsAndPorts) {
  auto p = policy::ParsePolicy(
      "[network]\nallowed_hosts = [\"PyPI.org:443\", \"*.githubusercontent.com:443\", "
      "\"api.example.com\", \"pypi.org:443\"]\n",
      "t.toml");
  ASSERT_TRUE(p.ok()) << p.status();
  const auto& h = p->network.allowed_hosts;
  ASSERT_EQ(h.size(), 3u) << "duplicates are kept once";
  EXPECT_EQ(h[0].text, "pypi.org:443");
  EXPECT_EQ(h[1].text, "*.githubusercontent.com:443");
  EXPECT_TRUE(h[1].wildcard);
  EXPECT_EQ(h[1].host, "githubusercontent.com");
  EXPECT_EQ(h[2].port, 0);
  // Canonical TOML keeps them; parsing it gives them back.
  std::string canonical = policy::ToCanonicalToml(*p);
  EXPECT_NE(canonical.find("allowed_hosts = [\"pypi.org:443\", \"*.githubusercontent.com:443\", "
                           "\"api.example.com\"]"),
            std::string::npos)
      << canonical;
  auto again = policy::ParsePolicy(canonical, "c.toml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->network.allowed_hosts.size(), 3u);
  // Policies without the key keep their canonical form.
  EXPECT_EQ(policy::ToCanonicalToml(policy::DefaultPolicy()).find("allowed_hosts"),
            std::string::npos);
}

TEST(AllowedHostsTest, BadEntriesAreLocatedAndSayWhatToWrite) {
  for (const auto& [entry, needle] : std::vector<std::pair<std::string, std::string>>{
           {"pypi.org:0", "port"},
           {"pypi.org:70000", "port"},
           {"pypi.org:", "port"},
           {"*", "'*'"},
           {"*.", "no name"},
           {"a..b", "empty"},
           {"foo.*.com", "'*'"},
           {"exa mple.com", "character"},
           {"-a.com", "'-'"},
           {"*.10.0.0.1", "address"},
           {"http://x.com", "port"},
       }) {
    SCOPED_TRACE(entry);
    auto p = policy::ParsePolicy("[network]\nallowed_hosts = [\"ok.com\", \"" + entry + "\"]\n",
                                 "t.toml");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    std::string m(p.status().message());
    EXPECT_EQ(m.rfind("t.toml:2:28: network.allowed_hosts[1]: host \"", 0), 0u) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_NE(m.find("e.g. \"pypi.org:443\""), std::string::npos) << m;
  }
  auto wrong_type = policy::ParsePolicy("[network]\nallowed_hosts = \"pypi.org\"\n", "t.toml");
  EXPECT_FALSE(wrong_type.ok());
}

TEST(AllowedHostsTest, MatchingHonoursPortsAndWildcards) {
  HostRule any = *ParseHostRule("api.example.com");
  EXPECT_TRUE(HostRuleAllows(any, "api.example.com", 80));
  EXPECT_TRUE(HostRuleAllows(any, "api.example.com", 443));
  EXPECT_FALSE(HostRuleAllows(any, "api.example.com", 8080));
  EXPECT_FALSE(HostRuleAllows(any, "x.api.example.com", 443));
  HostRule wild = *ParseHostRule("*.githubusercontent.com:443");
  EXPECT_TRUE(HostRuleAllows(wild, "raw.githubusercontent.com", 443));
  EXPECT_TRUE(HostRuleAllows(wild, "a.b.githubusercontent.com", 443));
  EXPECT_FALSE(HostRuleAllows(wild, "githubusercontent.com", 443));
  EXPECT_FALSE(HostRuleAllows(wild, "evilgithubusercontent.com", 443));
  EXPECT_FALSE(HostRuleAllows(wild, "raw.githubusercontent.com", 80));
}

TEST(ProxyRequestTest, ConnectNamesHostAndPort) {
  auto r = ParseProxyRequest("CONNECT PyPI.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n\x16\x03");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_TRUE((*r)->is_connect);
  EXPECT_EQ((*r)->host, "pypi.org");
  EXPECT_EQ((*r)->port, 443);
  EXPECT_EQ((*r)->head_bytes, 53u);
  auto partial = ParseProxyRequest("CONNECT pypi.org:443 HTTP/1.1\r\nHost: x\r\n");
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->has_value());
}

TEST(ProxyRequestTest, PlainRequestIsRewrittenToOriginFormWithoutProxyHeaders) {
  auto r = ParseProxyRequest(
      "GET http://api.example.com:8080/a/b?c=d HTTP/1.1\r\nHost: api.example.com:8080\r\n"
      "Proxy-Connection: keep-alive\r\nproxy-authorization: x\r\nAccept: */*\r\n\r\nBODY");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_FALSE((*r)->is_connect);
  EXPECT_EQ((*r)->host, "api.example.com");
  EXPECT_EQ((*r)->port, 8080);
  EXPECT_EQ((*r)->upstream_head,
            "GET /a/b?c=d HTTP/1.1\r\nHost: api.example.com:8080\r\nAccept: */*\r\n\r\n");
  auto bare = ParseProxyRequest("GET http://a.com HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(bare.ok() && bare->has_value());
  EXPECT_EQ((*bare)->port, 80);
  EXPECT_EQ((*bare)->upstream_head, "GET / HTTP/1.0\r\n\r\n");
  auto query = ParseProxyRequest("GET http://a.com?q=1 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(query.ok() && query->has_value());
  EXPECT_EQ((*query)->upstream_head, "GET /?q=1 HTTP/1.1\r\n\r\n");
}

TEST(ProxyRequestTest, RefusesWhatItDoesNotServe) {
  for (const char* bad : {
           "GET /relative HTTP/1.1\r\n\r\n",
           "GET https://a.com/ HTTP/1.1\r\n\r\n",
           "CONNECT a.com HTTP/1.1\r\n\r\n",
           "CONNECT a.com:0 HTTP/1.1\r\n\r\n",
           "CONNECT a.com:99999 HTTP/1.1\r\n\r\n",
           "GET http://user@a.com/ HTTP/1.1\r\n\r\n",
           "CONNECT a b.com:443 HTTP/1.1\r\n\r\n",
           "CONNECT a.com:443 HTTP/2\r\n\r\n",
           "GARBAGE\r\n\r\n",
       }) {
    SCOPED_TRACE(bad);
    auto r = ParseProxyRequest(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  std::string huge = "GET http://a.com/ HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a');
  EXPECT_EQ(ParseProxyRequest(huge).status().code(), absl::StatusCode::kInvalidArgument);
}

// The first flight of a real TLS client (OpenSSL) naming `server_name` ("" for none).
std::string ClientHello(const char* server_name) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (*server_name) SSL_set_tlsext_host_name(ssl, server_name);
  SSL_connect(ssl);  // wants to read the server's answer; the hello is written
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

TEST(TlsSniTest, FindsTheNameOpenSslSends) {
  std::string hello = ClientHello("API.Example.com");
  auto r = ParseClientHelloSni(hello);
  EXPECT_EQ(r.status, SniStatus::kFound);
  EXPECT_EQ(r.name, "api.example.com");
  // Every shorter prefix is incomplete, never a wrong answer.
  for (size_t n = 0; n < hello.size(); n += 7) {
    EXPECT_EQ(ParseClientHelloSni(hello.substr(0, n)).status, SniStatus::kNeedMore) << n;
  }
}

TEST(TlsSniTest, NoNameAndNotTlsAreToldApart) {
  EXPECT_EQ(ParseClientHelloSni(ClientHello("")).status, SniStatus::kNoName);
  EXPECT_EQ(ParseClientHelloSni("GET / HTTP/1.1\r\n").status, SniStatus::kNotTls);
  std::string broken = ClientHello("a.com");
  broken[5] = 2;  // a ServerHello, not a ClientHello
  EXPECT_EQ(ParseClientHelloSni(broken).status, SniStatus::kNotTls);
}

sockaddr_storage V4(const char* a) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  v4->sin_family = AF_INET;
  ::inet_pton(AF_INET, a, &v4->sin_addr);
  return ss;
}

TEST(DestinationGuardTest, RefusesLoopbackLinkLocalAndTheHostsOwn) {
  EXPECT_NE(RefusedDestination(V4("169.254.169.254")).find("link-local"), std::string::npos);
  EXPECT_EQ(RefusedDestination(V4("127.0.0.53")), "loopback");
  EXPECT_NE(RefusedDestination(V4("0.0.0.0")), "");
  EXPECT_NE(RefusedDestination(V4("224.0.0.1")), "");
  EXPECT_EQ(RefusedDestination(V4("192.0.2.10")), "") << "TEST-NET-1 is no address of this host";
  sockaddr_storage v6{};
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&v6);
  a6->sin6_family = AF_INET6;
  ::inet_pton(AF_INET6, "::ffff:169.254.169.254", &a6->sin6_addr);
  EXPECT_NE(RefusedDestination(v6).find("link-local"), std::string::npos);
  ::inet_pton(AF_INET6, "fe80::1", &a6->sin6_addr);
  EXPECT_NE(RefusedDestination(v6).find("link-local"), std::string::npos);
}

TEST(HostsFileTest, ParsesLinesAndRefusesBadOnes) {
  auto h = ParseHostsFile("# test\n10.0.0.1 A.example b.example\n\n::1 v6.example # c\n");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at("a.example").size(), 1u);
  EXPECT_EQ(AddressText(h->at("b.example")[0]), "10.0.0.1");
  EXPECT_EQ(AddressText(h->at("v6.example")[0]), "::1");
  EXPECT_FALSE(ParseHostsFile("not-an-address x\n").ok());
  EXPECT_FALSE(ParseHostsFile("10.0.0.1\n").ok());
}

}  // namespace
}  // namespace rauha::egress
