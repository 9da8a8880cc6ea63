// The egress proxy against the real kernel: rauhad runs in a network namespace the test
// creates, "the internet" is one more namespace routed from it, holding an HTTP and an HTTPS
// server (certificate from a CA the test makes with openssl). Names resolve only from a hosts
// file the test writes (--egress-hosts): no lookup and no packet leaves the machine.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "rauha-common/fd.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

constexpr char kInternet[] = "172.31.253.2";
constexpr char kRauhadSide[] = "172.31.253.1";

int Sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = text;
  return rc;
}

constexpr char kServer[] = R"py(
import http.server, socketserver, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello %s %s %s\n" % (self.server.scheme, self.headers.get("Host", ""), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
plain = S((sys.argv[1], 80), H); plain.scheme = "http"
tls = S((sys.argv[1], 443), H); tls.scheme = "https"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()
)py";

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

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    static int counter = 0;
    ns_ = "rauha-egress-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    internet_ = ns_ + "-net";
    std::string out;
    for (const std::string& cmd : {
             "ip netns add " + ns_,
             "ip netns add " + internet_,
             "ip -n " + ns_ + " link set lo up",
             "ip -n " + ns_ + " link add reg0 type veth peer name eth0 netns " + internet_,
             "ip -n " + ns_ + " addr add " + std::string(kRauhadSide) + "/30 dev reg0",
             "ip -n " + ns_ + " link set reg0 up",
             "ip -n " + internet_ + " addr add " + std::string(kInternet) + "/30 dev eth0",
             "ip -n " + internet_ + " link set eth0 up",
             "ip -n " + internet_ + " link set lo up",
         }) {
      ASSERT_EQ(Sh(cmd, &out), 0) << cmd << ": " << out;
    }
    daemon_ = std::make_unique<Daemon>();
    dir_ = daemon_->dir() + "/egress";
    std::filesystem::create_directories(dir_ + "/repo");
    MakeCertificates();
    std::ofstream(dir_ + "/hosts") << kInternet
                                   << " api.example.test other.example.test denied.example.test "
                                      "x.cdn.example.test\n"
                                   << "169.254.169.254 meta.example.test\n"
                                   << kRauhadSide << " self.example.test\n"
                                   << "127.0.0.1 local.example.test\n";
    StartServer();
    daemon_->set_extra_args({"--egress-hosts", dir_ + "/hosts"});
    daemon_->set_netns("/run/netns/" + ns_);
    daemon_->Start();
  }

  void TearDown() override {
    // First: its command line names the daemon's directory, where LeftoverProcesses looks.
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
      server_pid_ = -1;
    }
    if (daemon_) {
      daemon_->Stop();
      EXPECT_TRUE(daemon_->LeftoverProcesses().empty()) << "processes left after rauhad stopped";
      EXPECT_TRUE(daemon_->LeftoverCgroups().empty()) << "cgroups left after rauhad stopped";
    }
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
    daemon_.reset();
    for (const auto& ns : {internet_, ns_}) {
      if (ns.empty()) continue;
      std::string out;
      EXPECT_EQ(Sh("ip netns del " + ns, &out), 0) << out;
    }
  }

  void MakeCertificates() {
    std::string d = dir_, out;
    std::ofstream(d + "/san.ext") << "subjectAltName=DNS:api.example.test,DNS:other.example.test,"
                                     "DNS:x.cdn.example.test\n";
    for (const std::string& cmd : {
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                 d + "/ca.key -out " + d + "/repo/ca.pem -days 2 -subj /CN=rauha-test-ca",
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
                 "/server.key -out " + d + "/server.csr -subj /CN=api.example.test",
             "openssl x509 -req -in " + d + "/server.csr -CA " + d + "/repo/ca.pem -CAkey " + d +
                 "/ca.key -CAcreateserial -out " + d + "/server.pem -days 2 -extfile " + d +
                 "/san.ext",
         }) {
      ASSERT_EQ(Sh(cmd, &out), 0) << cmd << ": " << out;
    }
  }

  void StartServer() {
    std::ofstream(dir_ + "/server.py") << kServer;
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    server_pid_ = ::fork();
    if (server_pid_ == 0) {
      ::dup2(p[1], 1);
      std::string script = dir_ + "/server.py", cert = dir_ + "/server.pem",
                  key = dir_ + "/server.key";
      ::execlp("ip", "ip", "netns", "exec", internet_.c_str(), "/usr/bin/python3", script.c_str(),
               kInternet, cert.c_str(), key.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(p[1]);
    pollfd pfd{p[0], POLLIN, 0};
    std::string line;
    char buf[64];
    while (line.find("ready") == std::string::npos && ::poll(&pfd, 1, 20000) == 1) {
      ssize_t n = ::read(p[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    server_out_.reset(p[0]);  // open until the server is killed: it may still write
    ASSERT_NE(line.find("ready"), std::string::npos) << "the test's servers did not start";
  }

  void CreateZone(const std::string& name, const std::string& hosts) {
    zpb::CreateZoneRequest req;
    req.set_name(name);
    req.set_policy_toml(
        "[zone]\ntype = \"non-global\"\n\n[network]\nmode = \"isolated\"\n"
        "allowed_hosts = [" +
        hosts + "]\n");
    zpb::CreateZoneResponse resp;
    grpc::ClientContext ctx;
    auto st = daemon_->Zones()->CreateZone(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  spb::SandboxResult RunIn(const std::string& zone, const std::vector<std::string>& command) {
    spb::RunSandboxRequest req;
    req.set_name(zone);
    req.set_repo_path(dir_ + "/repo");
    req.set_timeout_seconds(60);
    for (const auto& c : command) req.add_command(c);
    spb::SandboxResult result;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    auto st = daemon_->Sandbox()->RunSandbox(&ctx, req, &result);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return result;
  }

  static const spb::EnforcementEventSummary* ProxyEvent(const spb::SandboxResult& r,
                                                        const std::string& object) {
    for (const auto& e : r.enforcement_events()) {
      if (e.layer() == "proxy" && e.object() == object) return &e;
    }
    return nullptr;
  }

  std::string ns_, internet_, dir_;
  pid_t server_pid_ = -1;
  UniqueFd server_out_;
  std::unique_ptr<Daemon> daemon_;
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

}  // namespace
}  // namespace rauha::testing
