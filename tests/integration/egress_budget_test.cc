// The egress proxy's per-zone byte budget ([network] egress_bytes_max) and its stats
// (ZoneStats.egress, `rauha zone stats`) against the real kernel, through the test's "internet"
// (test_internet.h): everything stays in namespaces the test makes.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/test_internet.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

constexpr uint64_t kBudget = 1 << 20;

// GET /bytes/N: N bytes of 'x'. GET /hold: a head promising 10 bytes, then nothing for 60 s
// (a connection that stays open in the middle of its response).
constexpr char kBytesServer[] = R"py(
import http.server, socketserver, ssl, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/hold":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.flush()
            time.sleep(60)
            return
        n = int(self.path.split("/")[-1]) if self.path.startswith("/bytes/") else 5
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        while n > 0:
            self.wfile.write(chunk[:min(n, len(chunk))])
            n -= min(n, len(chunk))
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S((sys.argv[1], 80), H)
tls = S((sys.argv[1], 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()
)py";

// In the zone: argv[1] sent to the proxy as a request head; the answer's status line printed.
constexpr char kRawRequest[] = R"py(
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=30)
s.sendall(sys.argv[1].encode() + b"\r\nHost: x\r\n\r\n")
h = b""
while b"\r\n" not in h:
    d = s.recv(1)
    if not d: break
    h += d
print(h.split(b"\r\n")[0].decode() or "closed")
)py";

// In the zone: connection A asks for /hold and reads its head (A is now open mid-response);
// then connection B downloads argv[1] bytes; then A is read to its end. Prints what B got and
// whether A was closed (EOF before its 10 bytes) or not.
constexpr char kHoldAndDownload[] = R"py(
import socket, sys
def head(s):
    h = b""
    while b"\r\n\r\n" not in h:
        d = s.recv(1)
        if not d: break
        h += d
    return h
a = socket.create_connection(("127.0.0.1", 3128), timeout=30)
a.sendall(b"GET http://api.example.test/hold HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
print("A head:", head(a).split(b"\r\n")[0].decode())
b = socket.create_connection(("127.0.0.1", 3128), timeout=30)
b.sendall(("GET http://api.example.test/bytes/%s HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % sys.argv[1]).encode())
got = 0
try:
    while True:
        d = b.recv(65536)
        if not d: break
        got += len(d)
except ConnectionResetError:
    pass
print("B got", got)
rest = b""
try:
    while True:
        d = a.recv(100)
        if not d: break
        rest += d
    print("A closed after", len(rest))
except ConnectionResetError:
    print("A closed after", len(rest))
except socket.timeout:
    print("A still open")
)py";

TestInternetConfig BudgetInternet() {
  TestInternetConfig c;
  c.ns_prefix = "rauha-budget";
  c.rauhad_address = "172.31.250.1";
  c.internet_address = "172.31.250.2";
  c.hosts = "172.31.250.2 api.example.test\n::1 local6.example.test\n";
  c.server_script = kBytesServer;
  return c;
}

class EgressBudgetTest : public TestInternetTest {
 protected:
  EgressBudgetTest() : TestInternetTest(BudgetInternet()) {}

  static std::string Policy(const std::string& budget) {
    return "[network]\nmode = \"isolated\"\nallowed_hosts = [\"api.example.test\"]\n" +
           (budget.empty() ? std::string() : "egress_bytes_max = " + budget + "\n");
  }

  zpb::ZoneStatsResponse Stats(const std::string& zone) {
    zpb::ZoneStatsRequest req;
    req.set_zone_name(zone);
    zpb::ZoneStatsResponse resp;
    grpc::ClientContext ctx;
    auto st = daemon_->Zones()->ZoneStats(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  // `rauha --socket ... args...`: its stdout (stderr joined) and exit status.
  int Cli(const std::vector<std::string>& args, std::string* out) {
    std::string cmd = std::string(RAUHA_CLI_BIN) + " --socket " + daemon_->socket();
    for (const auto& a : args) cmd += " " + a;
    int rc = RunShell(cmd, out);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
};

// A zone that has used its budget: the running connection that spent it and one idle mid-
// response are both closed, with one event naming the zone and the budget; the proxy relayed
// exactly the budget; later requests are refused (403, an event each) until ApplyPolicy gives
// a larger budget.
TEST_F(EgressBudgetTest, SpentBudgetClosesTheZonesConnectionsAndRefusesNewOnes) {
  ASSERT_TRUE(CreateZoneWithPolicy("agent", Policy(std::to_string(kBudget))).ok());
  auto r =
      RunIn("agent", {"/usr/bin/python3", "-c", kHoldAndDownload, std::to_string(4 * kBudget)});
  EXPECT_NE(r.stdout().find("A head: HTTP/1.1 200"), std::string::npos) << r.stdout() << r.stderr();
  // B got less than it asked for (the budget covers A's and B's heads and requests too).
  size_t at = r.stdout().find("B got ");
  ASSERT_NE(at, std::string::npos) << r.stdout() << r.stderr();
  uint64_t got = std::stoull(r.stdout().substr(at + 6));
  EXPECT_GT(got, 0u);
  EXPECT_LE(got, kBudget);
  EXPECT_NE(r.stdout().find("A closed after 0"), std::string::npos) << r.stdout();

  const spb::EnforcementEventSummary* budget = nullptr;
  for (const auto& e : r.enforcement_events()) {
    if (e.layer() == "proxy" && e.hook() == "proxy/budget") budget = &e;
  }
  ASSERT_NE(budget, nullptr) << r.DebugString();
  EXPECT_EQ(budget->decision(), "deny");
  EXPECT_EQ(budget->object(), "egress_bytes_max=1048576");
  EXPECT_NE(budget->message().find("zone \"agent\" has used its egress budget of 1048576 bytes"),
            std::string::npos)
      << budget->message();
  EXPECT_NE(budget->message().find("closed its 2 open connections"), std::string::npos)
      << budget->message();
  bool listed = false;
  for (const auto& e : r.events()) listed = listed || e.kind() == "egress_budget";
  EXPECT_TRUE(listed) << r.DebugString();

  // Exactly the budget went through, both ways together.
  auto s = Stats("agent");
  EXPECT_TRUE(s.egress().proxy());
  EXPECT_EQ(s.egress().bytes_up() + s.egress().bytes_down(), kBudget);
  EXPECT_EQ(s.egress().bytes_max(), kBudget);
  EXPECT_EQ(s.egress().budget_closed(), 2u);
  EXPECT_EQ(s.egress().connections_total(), 2u);
  EXPECT_EQ(s.egress().connections_open(), 0u);

  // New requests: refused with an event saying why.
  auto refused = RunIn("agent", {"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                 "http://api.example.test/bytes/5"});
  EXPECT_EQ(refused.stdout(), "403") << refused.stderr();
  const auto* e = ProxyEvent(refused, "api.example.test:80");
  ASSERT_NE(e, nullptr) << refused.DebugString();
  EXPECT_NE(e->message().find("egress budget of 1048576 bytes ([network] egress_bytes_max)"),
            std::string::npos)
      << e->message();
  EXPECT_EQ(Stats("agent").egress().connections_refused(), 1u);

  // A larger budget lets the zone go on.
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("agent");
  apply.set_policy_toml(Policy("\"64Mi\""));
  zpb::ApplyPolicyResponse applied;
  grpc::ClientContext actx;
  auto st = daemon_->Zones()->ApplyPolicy(&actx, apply, &applied);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto again = RunIn("agent", {"/usr/bin/curl", "-sS", "http://api.example.test/bytes/5"});
  EXPECT_EQ(again.stdout(), "xxxxx") << again.stderr();
  EXPECT_EQ(Stats("agent").egress().bytes_max(), 64u << 20);
}

// Without a budget the same download goes through whole; the stats count it, over the RPC and
// in `rauha zone stats` (text and --json).
TEST_F(EgressBudgetTest, StatsCountConnectionsAndBytes) {
  ASSERT_TRUE(CreateZoneWithPolicy("agent", Policy("")).ok());
  auto r = RunIn("agent", {"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                           "http://api.example.test/bytes/3000000"});
  EXPECT_EQ(r.stdout(), "3000000") << r.stderr();
  auto denied = RunIn("agent", {"/usr/bin/curl", "-sS", "http://denied.example.test/"});
  EXPECT_NE(ProxyEvent(denied, "denied.example.test:80"), nullptr) << denied.DebugString();

  auto s = Stats("agent").egress();
  EXPECT_TRUE(s.proxy());
  EXPECT_FALSE(s.nftables()) << "an isolated zone has no chains";
  EXPECT_EQ(s.connections_total(), 2u);
  EXPECT_EQ(s.connections_refused(), 1u);
  EXPECT_EQ(s.connections_open(), 0u);
  EXPECT_GT(s.bytes_down(), 3000000u);  // the body and the response head
  EXPECT_LT(s.bytes_down(), 3000000u + 1024);
  EXPECT_GT(s.bytes_up(), 0u);  // the request head
  EXPECT_EQ(s.bytes_max(), 0u);
  EXPECT_EQ(s.budget_closed(), 0u);

  std::string out;
  ASSERT_EQ(Cli({"zone", "stats", "agent", "--json"}, &out), 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["egress"]["proxy"], true) << out;
  EXPECT_EQ(j["egress"]["connections_total"], 2) << out;
  EXPECT_EQ(j["egress"]["bytes_down"], s.bytes_down()) << out;
  ASSERT_EQ(Cli({"zone", "stats", "agent"}, &out), 0) << out;
  EXPECT_NE(out.find("0 open, 2 in all, 1 refused"), std::string::npos) << out;
  EXPECT_NE(out.find("proxy budget"), std::string::npos) << out;

  // A budget of 0 bytes is no budget a person meant: refused, and the zone keeps its policy.
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("agent");
  apply.set_policy_toml(Policy("0"));
  zpb::ApplyPolicyResponse applied;
  grpc::ClientContext actx;
  auto st = daemon_->Zones()->ApplyPolicy(&actx, apply, &applied);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("network.egress_bytes_max must be at least 1 byte"),
            std::string::npos)
      << st.error_message();
  EXPECT_EQ(Stats("agent").egress().bytes_max(), 0u);
}

// The budget's use and the stats outlive rauhad: a zone that spent its budget before a crash
// (kill -9, once the batched write has the count: a crash loses at most the last second's) or a
// clean stop still has it spent after, is refused with the budget's event, and its counters go
// on from where they were. Deleting the zone deletes its counters' row. Before, each start of
// rauhad gave every zone a fresh budget and counters from 0.
TEST_F(EgressBudgetTest, SpentBudgetAndCountersOutliveRestarts) {
  ASSERT_TRUE(CreateZoneWithPolicy("agent", Policy(std::to_string(kBudget))).ok());
  const std::string db = daemon_->dir() + "/state/rauha.db";
  const std::string zone_id = daemon_->ZoneId("agent");
  ASSERT_FALSE(zone_id.empty());
  auto r = RunIn("agent", {"/usr/bin/curl", "-sS", "-o", "/dev/null",
                           "http://api.example.test/bytes/" + std::to_string(4 * kBudget)});
  auto before = Stats("agent").egress();
  ASSERT_EQ(before.bytes_up() + before.bytes_down(), kBudget) << r.DebugString();
  EXPECT_EQ(before.connections_total(), 1u);
  EXPECT_EQ(before.budget_closed(), 1u);
  const std::string row =
      "SELECT bytes_in + bytes_out FROM egress_counters WHERE zone_id = '" + zone_id + "'";
  int64_t stored = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       std::chrono::steady_clock::now() < deadline;) {
    stored = SqlInt(db, "SELECT coalesce((" + row + "), 0)");
    if (stored == static_cast<int64_t>(kBudget)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(stored, static_cast<int64_t>(kBudget)) << "the counters were never written";

  auto refused_after = [&](const std::string& when) -> zpb::EgressStats {
    auto s = Stats("agent").egress();
    EXPECT_TRUE(s.proxy()) << when;
    EXPECT_EQ(s.bytes_up() + s.bytes_down(), kBudget) << when;
    EXPECT_EQ(s.bytes_max(), kBudget) << when;
    EXPECT_EQ(s.budget_closed(), 1u) << when;
    auto refused = RunIn("agent", {"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                   "http://api.example.test/bytes/5"});
    EXPECT_EQ(refused.stdout(), "403") << when << ": " << refused.stderr();
    const auto* e = ProxyEvent(refused, "api.example.test:80");
    EXPECT_NE(e, nullptr) << when << ": " << refused.DebugString();
    if (e) {
      EXPECT_NE(e->message().find("egress budget of 1048576 bytes"), std::string::npos)
          << e->message();
    }
    return Stats("agent").egress();
  };

  daemon_->Kill9();
  daemon_->Start();
  auto after_crash = refused_after("after a crash");
  EXPECT_EQ(after_crash.connections_total(), 2u);
  EXPECT_EQ(after_crash.connections_refused(), 1u);
  EXPECT_EQ(after_crash.bytes_down(), before.bytes_down());

  daemon_->Stop();
  daemon_->Start();
  auto after_stop = refused_after("after a clean stop");
  EXPECT_EQ(after_stop.connections_total(), 3u);
  EXPECT_EQ(after_stop.connections_refused(), 2u);

  // A larger budget: the zone goes on, and the count with it.
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("agent");
  apply.set_policy_toml(Policy("\"64Mi\""));
  zpb::ApplyPolicyResponse applied;
  {
    grpc::ClientContext actx;
    auto st = daemon_->Zones()->ApplyPolicy(&actx, apply, &applied);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto again = RunIn("agent", {"/usr/bin/curl", "-sS", "http://api.example.test/bytes/5"});
  EXPECT_EQ(again.stdout(), "xxxxx") << again.stderr();
  auto later = Stats("agent").egress();
  EXPECT_GT(later.bytes_up() + later.bytes_down(), kBudget);
  EXPECT_EQ(later.connections_total(), 4u);

  zpb::DeleteZoneRequest del;
  del.set_name("agent");
  del.set_force(true);
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext dctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&dctx, del, &dresp).ok());
  EXPECT_EQ(SqlInt(db, "SELECT count(*) FROM egress_counters"), 0);
}

// IPv6 literals in brackets: CONNECT [::1]:443 is refused when no rule names it, a name that
// resolves to ::1 is refused as loopback, and a rule naming [::1]:8080 lets the proxy try it
// (nothing listens there: 502, no event), as for IPv4 addresses.
TEST_F(EgressBudgetTest, Ipv6LiteralsFollowTheSameRules) {
  ASSERT_TRUE(CreateZoneWithPolicy("agent",
                                   "[network]\nallowed_hosts = [\"local6.example.test:443\", "
                                   "\"[0:0::1]:8080\"]\n")
                  .ok());
  auto literal =
      RunIn("agent", {"/usr/bin/python3", "-c", kRawRequest, "CONNECT [::1]:443 HTTP/1.1"});
  EXPECT_EQ(literal.stdout(), "HTTP/1.1 403 Forbidden\n") << literal.stderr();
  const auto* e = ProxyEvent(literal, "[::1]:443");
  ASSERT_NE(e, nullptr) << literal.DebugString();
  EXPECT_NE(e->message().find("allowed_hosts"), std::string::npos) << e->message();

  auto named =
      RunIn("agent", {"/usr/bin/curl", "-sS", "--max-time", "20", "https://local6.example.test/"});
  EXPECT_EQ(named.status(), "failed");
  const auto* loopback = ProxyEvent(named, "local6.example.test:443");
  ASSERT_NE(loopback, nullptr) << named.DebugString();
  EXPECT_NE(loopback->message().find("::1 is loopback"), std::string::npos) << loopback->message();

  auto ruled =
      RunIn("agent", {"/usr/bin/python3", "-c", kRawRequest, "GET http://[::1]:8080/ HTTP/1.1"});
  EXPECT_EQ(ruled.stdout(), "HTTP/1.1 502 Bad Gateway\n") << ruled.stderr();
  EXPECT_EQ(ProxyEvent(ruled, "[::1]:8080"), nullptr) << ruled.DebugString();

  auto bad = RunIn("agent", {"/usr/bin/python3", "-c", kRawRequest, "CONNECT ::1:443 HTTP/1.1"});
  EXPECT_EQ(bad.stdout(), "HTTP/1.1 400 Bad Request\n") << bad.stderr();
}

}  // namespace
}  // namespace rauha::testing
