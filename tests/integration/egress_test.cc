// The egress proxy against the real kernel, in the test "internet" of test_internet.h: rauhad
// in a network namespace the test creates, routed to one more holding an HTTP and an HTTPS
// server (certificate from a CA the test makes). Names resolve only from a hosts file the test
// writes (--egress-hosts): no lookup and no packet leaves the machine.
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/test_internet.h"

namespace rauha::testing {
namespace {

constexpr char kInternet[] = "172.31.253.2";
constexpr char kRauhadSide[] = "172.31.253.1";

// In the zone: CONNECT api.example.test:443 by hand, then TLS naming argv[1] as the server.
constexpr char kSniClient[] = R"py(
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    d = s.recv(1)
    if not d: break
    head += d
print(head.split(b"\r\n")[0].decode())
ctx = ssl.create_default_context(cafile="/workspace/ca.pem")
try:
    t = ctx.wrap_socket(s, server_hostname=sys.argv[1])
    t.sendall(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
except Exception as e:
    print("tls failed:", type(e).__name__)
    sys.exit(0)
data = b""
try:
    while True:
        d = t.recv(4096)
        if not d: break
        data += d
except ssl.SSLError:
    pass  # the server's close_notify
print(data.decode())
)py";

// In the zone: argv[1] connections to the proxy open at once, then a request on each, then
// every answer read.
constexpr char kManyClient[] = R"py(
import socket, sys
n = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", 3128), timeout=30) for _ in range(n)]
for i, c in enumerate(conns):
    c.sendall(("GET http://api.example.test/c%d HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % i).encode())
ok = 0
for i, c in enumerate(conns):
    data = b""
    while True:
        d = c.recv(65536)
        if not d: break
        data += d
    ok += data.endswith(("hello http api.example.test /c%d\n" % i).encode())
print(ok, "ok")
)py";

// In the zone: a direct connection, ignoring the proxy variables.
constexpr char kDirect[] = R"py(
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("connected")
except OSError as e:
    print("failed:", e)
)py";

TestInternetConfig EgressInternet() {
  TestInternetConfig c;
  c.ns_prefix = "rauha-egress";
  c.rauhad_address = kRauhadSide;
  c.internet_address = kInternet;
  c.server_names = {"api.example.test", "other.example.test", "x.cdn.example.test"};
  c.hosts = std::string(kInternet) +
            " api.example.test other.example.test denied.example.test x.cdn.example.test\n"
            "169.254.169.254 meta.example.test\n" +
            kRauhadSide + " self.example.test\n127.0.0.1 local.example.test\n";
  return c;
}

class EgressTest : public TestInternetTest {
 protected:
  EgressTest() : TestInternetTest(EgressInternet()) {}

  void CreateZone(const std::string& name, const std::string& hosts) {
    auto st = CreateZoneWithPolicy(name,
                                   "[zone]\ntype = \"non-global\"\n\n[network]\nmode = "
                                   "\"isolated\"\nallowed_hosts = [" +
                                       hosts + "]\n");
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
};

constexpr char kCurl[] = "/usr/bin/curl";

TEST_F(EgressTest, AllowedNamesPassThroughConnectAndPlainHttp) {
  CreateZone("agent", "\"api.example.test\", \"*.cdn.example.test:443\"");
  auto tls = RunIn("agent", {kCurl, "-sS", "--cacert", "/workspace/ca.pem",
                             "https://api.example.test/simple?x=1"});
  EXPECT_EQ(tls.status(), "succeeded") << tls.stderr();
  EXPECT_EQ(tls.stdout(), "hello https api.example.test /simple?x=1\n") << tls.stderr();
  auto plain = RunIn("agent", {kCurl, "-sS", "http://api.example.test/plain"});
  EXPECT_EQ(plain.status(), "succeeded") << plain.stderr();
  EXPECT_EQ(plain.stdout(), "hello http api.example.test /plain\n") << plain.stderr();
  auto wildcard = RunIn(
      "agent", {kCurl, "-sS", "--cacert", "/workspace/ca.pem", "https://x.cdn.example.test/"});
  EXPECT_EQ(wildcard.stdout(), "hello https x.cdn.example.test /\n") << wildcard.stderr();
  // The task's environment names the proxy in both spellings.
  auto env = RunIn("agent", {"/bin/sh", "-c", "echo $HTTPS_PROXY $http_proxy $NO_PROXY"});
  EXPECT_EQ(env.stdout(), "http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1\n");
  for (const auto* r : {&tls, &plain, &wildcard}) {
    for (const auto& e : r->enforcement_events()) EXPECT_NE(e.layer(), "proxy") << e.message();
  }
}

TEST_F(EgressTest, DeniedNamesAndDisagreeingSniAreRefusedWithEvents) {
  CreateZone("agent",
             "\"api.example.test\", \"other.example.test:443\", \"*.cdn.example.test:443\"");
  auto denied = RunIn(
      "agent", {kCurl, "-sS", "--cacert", "/workspace/ca.pem", "https://denied.example.test/"});
  EXPECT_EQ(denied.status(), "failed");
  EXPECT_NE(denied.stderr().find("403"), std::string::npos) << denied.stderr();
  const auto* e = ProxyEvent(denied, "denied.example.test:443");
  ASSERT_NE(e, nullptr) << denied.DebugString();
  EXPECT_EQ(e->hook(), "proxy/connect");
  EXPECT_EQ(e->decision(), "deny");
  EXPECT_EQ(e->source_zone(), "agent");
  EXPECT_NE(e->message().find("allowed_hosts"), std::string::npos) << e->message();

  auto plain = RunIn("agent", {kCurl, "-sS", "http://denied.example.test/"});
  EXPECT_NE(ProxyEvent(plain, "denied.example.test:80"), nullptr) << plain.DebugString();
  // The wildcard is for names below cdn.example.test on 443, not for others or other ports.
  auto port = RunIn("agent", {kCurl, "-sS", "http://x.cdn.example.test/"});
  EXPECT_NE(ProxyEvent(port, "x.cdn.example.test:80"), nullptr) << port.DebugString();

  // Both names are allowed; they must still agree.
  auto sni = RunIn("agent", {"/usr/bin/python3", "-c", kSniClient, "other.example.test"});
  EXPECT_NE(sni.stdout().find("200"), std::string::npos) << sni.stdout() << sni.stderr();
  EXPECT_NE(sni.stdout().find("tls failed"), std::string::npos) << sni.stdout();
  const auto* m = ProxyEvent(sni, "api.example.test:443");
  ASSERT_NE(m, nullptr) << sni.DebugString();
  EXPECT_NE(m->message().find("\"other.example.test\" disagrees"), std::string::npos)
      << m->message();
  // The same client naming the CONNECT host gets through.
  auto agree = RunIn("agent", {"/usr/bin/python3", "-c", kSniClient, "api.example.test"});
  EXPECT_NE(agree.stdout().find("hello https api.example.test /"), std::string::npos)
      << agree.stdout() << agree.stderr();
}

TEST_F(EgressTest, ProxyRefusesLinkLocalLoopbackAndHostAddresses) {
  CreateZone("agent",
             "\"meta.example.test:80\", \"self.example.test:80\", "
             "\"local.example.test:80\", \"169.254.169.254:80\"");
  for (const std::string name : {"meta.example.test", "self.example.test", "local.example.test"}) {
    auto r = RunIn("agent",
                   {kCurl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://" + name + "/"});
    EXPECT_EQ(r.stdout(), "403") << name << ": " << r.stderr();
    const auto* e = ProxyEvent(r, name + ":80");
    ASSERT_NE(e, nullptr) << r.DebugString();
    EXPECT_NE(e->message().find("unless a rule names that address"), std::string::npos)
        << e->message();
  }
  // A rule naming the address itself lets the proxy try it (nothing listens there: 502).
  auto named = RunIn("agent", {kCurl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                               "20", "http://169.254.169.254/"});
  EXPECT_EQ(ProxyEvent(named, "169.254.169.254:80"), nullptr) << named.DebugString();
}

TEST_F(EgressTest, TaskIgnoringTheProxyReachesNothing) {
  CreateZone("agent", "\"api.example.test\"");
  auto direct = RunIn("agent", {"/usr/bin/python3", "-c", kDirect, kInternet, "443"});
  EXPECT_NE(direct.stdout().find("failed"), std::string::npos) << direct.stdout();
  auto noproxy = RunIn(
      "agent", {kCurl, "-sS", "--noproxy", "*", "--max-time", "5", "http://api.example.test/"});
  EXPECT_EQ(noproxy.status(), "failed");
  EXPECT_EQ(noproxy.stdout(), "");
}

// 10 zones with 20 connections each open through the proxy at the same time (one thread for
// all of them): every request gets its own answer.
TEST_F(EgressTest, TwoHundredConcurrentConnectionsFromTenZones) {
  constexpr int kZones = 10, kPerZone = 20;
  for (int i = 0; i < kZones; ++i) CreateZone("z" + std::to_string(i), "\"api.example.test\"");
  std::vector<std::string> out(kZones);
  std::vector<std::thread> tasks;
  for (int i = 0; i < kZones; ++i) {
    tasks.emplace_back([&, i] {
      auto r = RunIn("z" + std::to_string(i),
                     {"/usr/bin/python3", "-c", kManyClient, std::to_string(kPerZone)});
      out[i] = r.stdout() + r.stderr();
    });
  }
  for (auto& t : tasks) t.join();
  for (int i = 0; i < kZones; ++i) {
    EXPECT_EQ(out[i], std::to_string(kPerZone) + " ok\n") << "zone z" << i;
  }
}

// Bodies far larger than the proxy's pipes and buffers, both ways, through a CONNECT tunnel
// and plain HTTP (the relay the proxy splices): every byte arrives, in order.
TEST_F(EgressTest, LargeBodiesArriveWholeBothWays) {
  CreateZone("agent", "\"api.example.test\"");
  constexpr size_t kDown = 24 * 1024 * 1024 + 777, kUp = 8 * 1024 * 1024 + 5;
  const std::string down_sha = Sha256Hex(HelloServerBytes(kDown));
  const std::string up_sha = Sha256Hex(HelloServerBytes(kUp));
  const std::string n = std::to_string(kDown);
  for (const std::string& url : std::vector<std::string>{"https://api.example.test/bytes/" + n,
                                                         "http://api.example.test/bytes/" + n}) {
    auto r = RunIn(
        "agent", {"/bin/sh", "-c",
                  std::string(kCurl) + " -sS --cacert /workspace/ca.pem " + url + " | sha256sum"});
    EXPECT_EQ(r.stdout(), down_sha + "  -\n") << url << ": " << r.stderr();
  }
  // The upload: the same pattern, made in the zone.
  const std::string make_up =
      "python3 -c 'import sys; sys.stdout.buffer.write((bytes(range(256)) * 32769)[:" +
      std::to_string(kUp) + "])' | ";
  for (const char* url : {"https://api.example.test/up", "http://api.example.test/up"}) {
    auto r = RunIn("agent", {"/bin/sh", "-c",
                             make_up + kCurl + " -sS --cacert /workspace/ca.pem -H 'Expect:' " +
                                 "--data-binary @- " + url});
    EXPECT_EQ(r.stdout(), "posted " + std::to_string(kUp) + " " + up_sha + "\n")
        << url << ": " << r.stderr();
  }
}

}  // namespace
}  // namespace rauha::testing
