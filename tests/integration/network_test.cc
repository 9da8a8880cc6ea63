// Bridged zone networking against the real kernel. Every test runs its rauhad inside a network
// namespace the test creates, so the bridge, the veths and the nftables table live there and
// never in the host's namespace; "the outside" is one more namespace routed from it. No traffic
// leaves the machine and nothing is masqueraded. TearDown checks that nothing is left: no rz*
// link, no bridge, no table, no namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

constexpr char kBridge[] = "rtbr0";
constexpr char kTable[] = "rauha_test";
constexpr char kSubnet[] = "10.231.7.0/24";
constexpr char kGateway[] = "10.231.7.1";
constexpr char kOutsideAddr[] = "172.31.254.2";

int ns_counter = 0;

// Runs a command line (iproute2 only: tests may use it, the runtime may not).
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

// Calls `fn` on a thread that has entered the namespace; sockets made there stay in it.
void InNetns(const std::string& ns, const std::function<void()>& fn) {
  std::thread t([&] {
    int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "entering netns " << ns << ": " << std::strerror(errno);
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
    fn();
  });
  t.join();
}

int TcpSocketIn(const std::string& ns) {
  int fd = -1;
  InNetns(ns, [&] { fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  return fd;
}

sockaddr_in Addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A TCP connect from inside `ns`, optionally sending one byte.
bool ConnectFrom(const std::string& ns, const std::string& ip, int port, int timeout_ms,
                 const char* send = nullptr) {
  int fd = TcpSocketIn(ns);
  if (fd < 0) return false;
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  sockaddr_in a = Addr(ip, port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  bool ok = rc == 0;
  if (rc < 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
  }
  if (ok && send) (void)!::write(fd, send, 1);
  ::close(fd);
  return ok;
}

// A TCP listener in a namespace, accepting (and closing) connections until destroyed.
class Listener {
 public:
  Listener(const std::string& ns, const std::string& ip, int port) {
    fd_ = TcpSocketIn(ns);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a = Addr(ip, port);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
          ::listen(fd_, 16) == 0;
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) {
          int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0) {
            ++accepted_;
            ::close(c);
          }
        }
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_; }
  // The count once it reaches `at_least` (accepts happen on the listener's thread, a moment
  // after the client's connect returns), or the count after ~2 s.
  int WaitAccepted(int at_least) const {
    for (int i = 0; i < 200 && accepted_ < at_least; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return accepted_;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Python run inside a zone: connect to argv[1]:argv[2], retrying for argv[3] seconds.
constexpr char kClient[] = R"py(
import socket, sys, time
end = time.time() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0).close()
        print("connected"); sys.exit(0)
    except OSError as e:
        if time.time() > end:
            print("failed:", e); sys.exit(1)
        time.sleep(0.1)
)py";

// Python run inside a zone: serve argv[1] until a client sends "q" (or 60 s pass).
constexpr char kServer[] = R"py(
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); s.settimeout(60)
while True:
    c, _ = s.accept(); d = c.recv(1); c.close()
    if d == b"q": break
)py";

std::string Quote(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "\"" : ", \"") + s + "\"";
  return out;
}

std::string BridgedPolicy(const std::vector<std::string>& zones,
                          const std::vector<std::string>& egress = {},
                          const std::vector<std::string>& ingress = {}) {
  return "[zone]\ntype = \"non-global\"\n\n[capabilities]\nallowed = []\n\n[resources]\n"
         "pids_max = 256\n\n[network]\nmode = \"bridged\"\nallowed_zones = [" +
         Quote(zones) + "]\nallowed_egress = [" + Quote(egress) + "]\nallowed_ingress = [" +
         Quote(ingress) +
         "]\n\n[filesystem]\nwritable_paths = [\"/tmp\"]\n\n[devices]\n"
         "allowed = [\"/dev/null\", \"/dev/zero\", \"/dev/urandom\"]\n";
}

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    ns_ = "rauha-nettest-" + std::to_string(::getpid()) + "-" + std::to_string(++ns_counter);
    std::string out;
    ASSERT_EQ(Sh("ip netns add " + ns_, &out), 0) << out;
    daemon_ = std::make_unique<Daemon>(
        std::vector<std::string>{"--bridge", kBridge, "--subnet", kSubnet, "--nft-table", kTable});
    daemon_->set_netns("/run/netns/" + ns_);
    daemon_->Start();
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->Stop();
      EXPECT_TRUE(daemon_->LeftoverProcesses().empty()) << "processes left after rauhad stopped";
      EXPECT_TRUE(daemon_->LeftoverMounts().empty()) << "mounts left after rauhad stopped";
      EXPECT_TRUE(daemon_->LeftoverCgroups().empty()) << "cgroups left after rauhad stopped";
      for (pid_t pid : daemon_->LeftoverProcesses()) ::kill(pid, SIGKILL);
      if (!ns_.empty()) {
        EXPECT_EQ(ZoneLinks(), std::vector<std::string>{}) << "veths left after rauhad stopped";
        EXPECT_FALSE(LinkExists(kBridge)) << "bridge left after rauhad stopped";
        EXPECT_FALSE(TableExists()) << "nftables table left after rauhad stopped";
      }
      daemon_.reset();
    }
    for (const auto& ns : {outside_, ns_}) {
      if (ns.empty()) continue;
      std::string out;
      EXPECT_EQ(Sh("ip netns del " + ns, &out), 0) << out;
      EXPECT_FALSE(std::filesystem::exists("/run/netns/" + ns)) << "namespace " << ns << " left";
    }
  }

  std::vector<std::string> Links() {
    std::string out;
    Sh("ip -n " + ns_ + " -o link show", &out);
    std::vector<std::string> names;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      auto a = line.find(": "), b = line.find(':', a + 2);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::string name = line.substr(a + 2, b - a - 2);
      names.push_back(name.substr(0, name.find('@')));
    }
    return names;
  }
  std::vector<std::string> ZoneLinks() {
    std::vector<std::string> out;
    for (const auto& l : Links())
      if (l.rfind("rz", 0) == 0) out.push_back(l);
    return out;
  }
  bool LinkExists(const std::string& name) {
    for (const auto& l : Links())
      if (l == name) return true;
    return false;
  }
  // Through libnftables in the daemon's namespace (no nft binary needed).
  std::string ListTable() {
    std::string text;
    InNetns(ns_, [&] {
      nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
      nft_ctx_buffer_output(ctx);
      nft_ctx_buffer_error(ctx);
      if (nft_run_cmd_from_buffer(ctx, ("list table inet " + std::string(kTable)).c_str()) == 0)
        text = nft_ctx_get_output_buffer(ctx);
      nft_ctx_free(ctx);
    });
    return text;
  }
  bool TableExists() { return !ListTable().empty(); }

  void MakeOutside() {
    outside_ = ns_ + "-out";
    std::string o = outside_, d = ns_, out;
    for (const std::string& cmd : {
             "ip netns add " + o,
             "ip -n " + d + " link add rtout type veth peer name eth0 netns " + o,
             "ip -n " + d + " addr add 172.31.254.1/30 dev rtout",
             "ip -n " + d + " link set rtout up",
             "ip -n " + o + " addr add " + std::string(kOutsideAddr) + "/30 dev eth0",
             "ip -n " + o + " link set eth0 up",
             "ip -n " + o + " link set lo up",
             "ip -n " + o + " route add " + std::string(kSubnet) + " via 172.31.254.1",
         }) {
      ASSERT_EQ(Sh(cmd, &out), 0) << cmd << ": " << out;
    }
  }

  grpc::Status CreateZone(const std::string& name, const std::string& policy) {
    rauha::zone::v1::CreateZoneRequest req;
    req.set_name(name);
    req.set_policy_toml(policy);
    rauha::zone::v1::CreateZoneResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->CreateZone(&ctx, req, &resp);
  }
  rauha::zone::v1::ZoneInfo GetZone(const std::string& name) {
    rauha::zone::v1::GetZoneRequest req;
    req.set_name(name);
    rauha::zone::v1::GetZoneResponse resp;
    grpc::ClientContext ctx;
    auto st = daemon_->Zones()->GetZone(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.zone();
  }
  grpc::Status DeleteZone(const std::string& name) {
    rauha::zone::v1::DeleteZoneRequest req;
    req.set_name(name);
    req.set_force(true);
    rauha::zone::v1::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->DeleteZone(&ctx, req, &resp);
  }
  grpc::Status ApplyPolicy(const std::string& name, const std::string& policy) {
    rauha::zone::v1::ApplyPolicyRequest req;
    req.set_zone_name(name);
    req.set_policy_toml(policy);
    rauha::zone::v1::ApplyPolicyResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->ApplyPolicy(&ctx, req, &resp);
  }
  rauha::sandbox::v1::SandboxResult RunIn(const std::string& zone,
                                          const std::vector<std::string>& command) {
    rauha::sandbox::v1::RunSandboxRequest req;
    req.set_name(zone);
    for (const auto& c : command) req.add_command(c);
    rauha::sandbox::v1::SandboxResult result;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    auto st = daemon_->Sandbox()->RunSandbox(&ctx, req, &result);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return result;
  }
  // True when a task in `zone` connects to ip:port within `seconds`.
  bool ZoneConnects(const std::string& zone, const std::string& ip, int port, double seconds) {
    auto r = RunIn(zone, {"/usr/bin/python3", "-c", kClient, ip, std::to_string(port),
                          std::to_string(seconds)});
    EXPECT_TRUE(r.stdout().find("connected") != std::string::npos ||
                r.stdout().find("failed") != std::string::npos)
        << "client did not run: " << r.status() << " " << r.error() << " " << r.stderr();
    return r.exit_code() == 0 && r.stdout().find("connected") != std::string::npos;
  }

  // A server task in `zone` on `port`, running on its own thread until StopServer.
  struct ZoneServer {
    std::thread thread;
    std::string address;
    int port = 0;
  };
  std::unique_ptr<ZoneServer> StartServer(const std::string& zone, int port) {
    auto s = std::make_unique<ZoneServer>();
    s->address = GetZone(zone).address();
    s->port = port;
    s->thread = std::thread([this, zone, port] {
      RunIn(zone, {"/usr/bin/python3", "-c", kServer, std::to_string(port)});
    });
    // Ready when the daemon's namespace (the host side: no forward hook) can connect.
    for (int i = 0; i < 100 && !ConnectFrom(ns_, s->address, port, 200); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return s;
  }
  void StopServer(std::unique_ptr<ZoneServer> s) {
    ConnectFrom(ns_, s->address, s->port, 1000, "q");
    s->thread.join();
  }

  std::string ns_;
  std::string outside_;
  std::unique_ptr<Daemon> daemon_;
};

bool InSubnet(const std::string& addr) { return addr.rfind("10.231.7.", 0) == 0; }

TEST_F(NetworkTest, BridgedZonesGetDistinctAddressesAndReachTheGateway) {
  // The host (gateway) is reached like anything else: by an egress allowance.
  ASSERT_TRUE(CreateZone("za", BridgedPolicy({}, {"10.231.7.1/32:7000"})).ok());
  ASSERT_TRUE(CreateZone("zb", BridgedPolicy({}, {"10.231.7.1/32:7000"})).ok());
  auto a = GetZone("za"), b = GetZone("zb");
  EXPECT_EQ(a.network_mode(), "bridged");
  EXPECT_TRUE(InSubnet(a.address())) << a.address();
  EXPECT_TRUE(InSubnet(b.address())) << b.address();
  EXPECT_NE(a.address(), b.address());
  EXPECT_NE(a.address(), kGateway);
  EXPECT_EQ(ZoneLinks().size(), 2u);
  EXPECT_TRUE(LinkExists(kBridge));
  std::string table = ListTable();
  EXPECT_NE(table.find("zo_"), std::string::npos) << table;

  Listener gateway(ns_, kGateway, 7000);
  ASSERT_TRUE(gateway.ok());
  EXPECT_TRUE(ZoneConnects("za", kGateway, 7000, 5));
  EXPECT_TRUE(ZoneConnects("zb", kGateway, 7000, 5));
  EXPECT_GE(gateway.WaitAccepted(2), 2);
  // Another service on the host is not reachable without an allowance.
  Listener host_service(ns_, kGateway, 7003);
  ASSERT_TRUE(host_service.ok());
  EXPECT_FALSE(ZoneConnects("za", kGateway, 7003, 1.5));
  EXPECT_EQ(host_service.accepted(), 0);
  {
    rauha::zone::v1::ZoneStatsRequest req;
    req.set_zone_name("za");
    rauha::zone::v1::ZoneStatsResponse stats;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->ZoneStats(&ctx, req, &stats).ok());
    EXPECT_GT(stats.network_rx_bytes(), 0u);
    EXPECT_GT(stats.network_tx_bytes(), 0u);
  }
  auto hosts = RunIn("za", {"/bin/cat", "/etc/hosts"});
  EXPECT_NE(hosts.stdout().find(a.address() + "\tza\n"), std::string::npos) << hosts.stdout();
  auto ifaces = RunIn("za", {"/usr/bin/python3", "-c",
                             "import socket; print(sorted(n for _, n in socket.if_nameindex()))"});
  EXPECT_EQ(ifaces.stdout(), "['eth0', 'lo']\n");

  ASSERT_TRUE(DeleteZone("za").ok());
  EXPECT_EQ(ZoneLinks().size(), 1u);
  ASSERT_TRUE(DeleteZone("zb").ok());
  // The last bridged zone took the bridge and the table with it.
  EXPECT_TRUE(ZoneLinks().empty());
  EXPECT_FALSE(LinkExists(kBridge));
  EXPECT_FALSE(TableExists());
}

TEST_F(NetworkTest, ForwardingIsSwitchedOffAgainWhenRauhadSwitchedItOn) {
  auto forwarding = [&] {
    std::string value;
    InNetns(ns_, [&] {
      std::ifstream in("/proc/sys/net/ipv4/ip_forward");
      std::getline(in, value);
    });
    return value;
  };
  // A fresh namespace starts with forwarding off.
  ASSERT_EQ(forwarding(), "0");
  ASSERT_TRUE(CreateZone("fw", BridgedPolicy({}, {})).ok());
  EXPECT_EQ(forwarding(), "1") << "bridged zones are routed through rauhad's namespace";
  ASSERT_TRUE(DeleteZone("fw").ok());
  EXPECT_EQ(forwarding(), "0") << "rauhad switched it on, so it switches it off with the bridge";
  EXPECT_FALSE(std::filesystem::exists(daemon_->dir() + "/run/ip_forward.restore"));

  // When forwarding was already on, it stays on.
  InNetns(ns_, [&] { std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1\n"; });
  ASSERT_TRUE(CreateZone("fw2", BridgedPolicy({}, {})).ok());
  ASSERT_TRUE(DeleteZone("fw2").ok());
  EXPECT_EQ(forwarding(), "1");
}

TEST_F(NetworkTest, IsolatedZoneHasOnlyLoopback) {
  ASSERT_TRUE(CreateZone("iso", PolicyWith("pids_max = 64")).ok());
  auto r = RunIn("iso", {"/usr/bin/python3", "-c",
                         "import socket; print(sorted(n for _, n in socket.if_nameindex()))"});
  EXPECT_EQ(r.stdout(), "['lo']\n") << r.stderr();
  EXPECT_TRUE(GetZone("iso").address().empty());
  EXPECT_TRUE(ZoneLinks().empty());
  EXPECT_FALSE(TableExists());
}

// Ethernet frames a zone sends with CAP_NET_RAW straight to another zone's MAC: the bridge
// ports are isolated, so they never arrive (IP between zones goes through the host's routed,
// nftables-filtered path instead). EtherType 0x88b5 is IEEE's "local experimental".
constexpr const char* kMac = R"(
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
info = fcntl.ioctl(s.fileno(), 0x8927, struct.pack('256s', b'eth0'))  # SIOCGIFHWADDR
print(info[18:24].hex())
)";
constexpr const char* kReceive = R"(
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind(('eth0', 0))
s.settimeout(0.2)
print('ready', flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        if b'rauha-l2-probe' in s.recv(2048):
            print('received'); sys.exit(0)
    except socket.timeout:
        pass
print('none')
)";
constexpr const char* kSend = R"(
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
dst = bytes.fromhex(sys.argv[1])
src = s.getsockname()[4]
for _ in range(20):
    s.send(dst + src + b'\x88\xb5' + b'rauha-l2-probe'.ljust(46, b'.'))
    time.sleep(0.05)
print('sent')
)";

TEST_F(NetworkTest, ZonesCannotSendEthernetFramesToEachOther) {
  std::string raw = BridgedPolicy({});
  raw.replace(raw.find("allowed = []"), 12, "allowed = [\"CAP_NET_RAW\"]");
  ASSERT_TRUE(CreateZone("l2a", raw).ok());
  ASSERT_TRUE(CreateZone("l2b", raw).ok());
  auto mac = RunIn("l2b", {"/usr/bin/python3", "-c", kMac});
  ASSERT_EQ(mac.stdout().size(), 13u) << mac.stdout() << mac.stderr();
  std::string b_mac = mac.stdout().substr(0, 12);
  rauha::sandbox::v1::SandboxResult received;
  std::thread receiver([&] { received = RunIn("l2b", {"/usr/bin/python3", "-c", kReceive, "4"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto sent = RunIn("l2a", {"/usr/bin/python3", "-c", kSend, b_mac});
  receiver.join();
  EXPECT_EQ(sent.stdout(), "sent\n") << sent.stderr();
  EXPECT_EQ(received.stdout(), "ready\nnone\n") << received.stderr();
}

TEST_F(NetworkTest, ZoneReachesAnotherOnlyWhenAllowedZonesSaysSo) {
  // zb may open connections to za; za may not open any to zb.
  ASSERT_TRUE(CreateZone("za", BridgedPolicy({})).ok());
  ASSERT_TRUE(CreateZone("zb", BridgedPolicy({"za"})).ok());
  auto server_a = StartServer("za", 8080);
  auto server_b = StartServer("zb", 8081);
  EXPECT_TRUE(ZoneConnects("zb", server_a->address, 8080, 5));
  EXPECT_FALSE(ZoneConnects("za", server_b->address, 8081, 1.5));
  // ApplyPolicy taking the allowance away closes the path for new connections.
  ASSERT_TRUE(ApplyPolicy("zb", BridgedPolicy({})).ok());
  EXPECT_FALSE(ZoneConnects("zb", server_a->address, 8080, 1.5));
  // And giving it to za opens za -> zb.
  ASSERT_TRUE(ApplyPolicy("za", BridgedPolicy({"zb"})).ok());
  EXPECT_TRUE(ZoneConnects("za", server_b->address, 8081, 5));
  StopServer(std::move(server_a));
  StopServer(std::move(server_b));
}

TEST_F(NetworkTest, EgressAndIngressFollowThePolicy) {
  MakeOutside();
  Listener allowed(outside_, kOutsideAddr, 8443), other(outside_, kOutsideAddr, 8444);
  ASSERT_TRUE(allowed.ok() && other.ok());
  ASSERT_TRUE(
      CreateZone("web", BridgedPolicy({}, {"172.31.254.2/32:8443"}, {"172.31.254.0/30:9000"}))
          .ok());
  // `rauha zone show` lists the zone's effective rules: the allowance is there.
  std::string rules = GetZone("web").network_rules();
  EXPECT_NE(rules.find("172.31.254.2"), std::string::npos) << rules;
  EXPECT_NE(rules.find("8443"), std::string::npos) << rules;
  EXPECT_TRUE(ZoneConnects("web", kOutsideAddr, 8443, 5));
  EXPECT_FALSE(ZoneConnects("web", kOutsideAddr, 8444, 1.5));
  EXPECT_EQ(other.accepted(), 0);

  auto server = StartServer("web", 9000);
  EXPECT_TRUE(ConnectFrom(outside_, server->address, 9000, 2000));
  // Without the ingress allowance the outside cannot open connections to the zone.
  ASSERT_TRUE(ApplyPolicy("web", BridgedPolicy({}, {"172.31.254.2/32:8443"})).ok());
  EXPECT_FALSE(ConnectFrom(outside_, server->address, 9000, 1500));
  StopServer(std::move(server));
}

TEST_F(NetworkTest, AllowedZonesIsAOneWayAllowanceInEachDirection) {
  // Four pairs, one per combination of "a may open connections to b" and "b to a", each zone
  // serving on its own port; every allowance is set at creation (no ApplyPolicy involved).
  struct Pair {
    std::string a, b;
    bool a_to_b, b_to_a;
  };
  const std::vector<Pair> pairs = {{"n0a", "n0b", false, false},
                                   {"n1a", "n1b", true, false},
                                   {"n2a", "n2b", false, true},
                                   {"n3a", "n3b", true, true}};
  for (const auto& p : pairs) {
    ASSERT_TRUE(CreateZone(p.a, BridgedPolicy(p.a_to_b ? std::vector<std::string>{p.b}
                                                       : std::vector<std::string>{}))
                    .ok());
    ASSERT_TRUE(CreateZone(p.b, BridgedPolicy(p.b_to_a ? std::vector<std::string>{p.a}
                                                       : std::vector<std::string>{}))
                    .ok());
  }
  std::map<std::string, std::unique_ptr<ZoneServer>> servers;
  int port = 8100;
  for (const auto& p : pairs) {
    servers[p.a] = StartServer(p.a, port++);
    servers[p.b] = StartServer(p.b, port++);
  }
  auto reaches = [&](const std::string& from, const std::string& to, bool expect) {
    const auto& s = *servers[to];
    return ZoneConnects(from, s.address, s.port, expect ? 5 : 1.5);
  };
  for (const auto& p : pairs) {
    EXPECT_EQ(reaches(p.a, p.b, p.a_to_b), p.a_to_b) << p.a << " -> " << p.b;
    EXPECT_EQ(reaches(p.b, p.a, p.b_to_a), p.b_to_a) << p.b << " -> " << p.a;
  }
  // An allowance names one zone: n3a may reach n3b, not the zones of the other pairs.
  EXPECT_FALSE(reaches("n3a", "n1b", false));
  for (auto& [name, s] : servers) StopServer(std::move(s));
}

TEST_F(NetworkTest, EgressToAnotherAddressOnTheAllowedPortIsRefused) {
  MakeOutside();
  // A second address of the outside, routed like the first, serving the same port.
  constexpr char kOtherAddr[] = "172.31.254.6";
  std::string out;
  for (const std::string& cmd : {
           "ip -n " + outside_ + " addr add " + std::string(kOtherAddr) + "/32 dev eth0",
           "ip -n " + ns_ + " route add " + std::string(kOtherAddr) + "/32 via " + kOutsideAddr,
       }) {
    ASSERT_EQ(Sh(cmd, &out), 0) << cmd << ": " << out;
  }
  Listener allowed(outside_, kOutsideAddr, 8443), other(outside_, kOtherAddr, 8443);
  ASSERT_TRUE(allowed.ok() && other.ok());
  // The path itself works: rauhad's namespace (not filtered) reaches the other address.
  ASSERT_TRUE(ConnectFrom(ns_, kOtherAddr, 8443, 2000));
  const int control = other.WaitAccepted(1);
  ASSERT_GE(control, 1);
  ASSERT_TRUE(CreateZone("web", BridgedPolicy({}, {"172.31.254.2/32:8443"})).ok());
  EXPECT_TRUE(ZoneConnects("web", kOutsideAddr, 8443, 5));
  EXPECT_FALSE(ZoneConnects("web", kOtherAddr, 8443, 1.5));
  EXPECT_EQ(other.accepted(), control);
  // Allowing that address too opens it: the refusal was the policy, not the route.
  ASSERT_TRUE(
      ApplyPolicy("web", BridgedPolicy({}, {"172.31.254.2/32:8443", "172.31.254.6/32:8443"})).ok());
  EXPECT_TRUE(ZoneConnects("web", kOtherAddr, 8443, 5));
  EXPECT_GT(other.WaitAccepted(control + 1), control);
}

// Clients of the public project write rules without a port: every port. Before, "0.0.0.0/0"
// was refused ("has no :port").
TEST_F(NetworkTest, EgressRuleWithoutPortReachesTheOutsideOnEveryPort) {
  MakeOutside();
  Listener a(outside_, kOutsideAddr, 8443), b(outside_, kOutsideAddr, 9553);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(CreateZone("any", BridgedPolicy({}, {"0.0.0.0/0"})).ok());
  EXPECT_TRUE(ZoneConnects("any", kOutsideAddr, 8443, 5));
  EXPECT_TRUE(ZoneConnects("any", kOutsideAddr, 9553, 5));
  EXPECT_GE(a.WaitAccepted(1), 1);
  EXPECT_GE(b.WaitAccepted(1), 1);
  std::string rules = GetZone("any").network_rules();
  EXPECT_NE(rules.find("ip daddr 0.0.0.0/0 accept"), std::string::npos) << rules;
}

// `zone verify` never sends its egress probe (a SYN to 192.0.2.1:9) where the policy lets it
// through: here 192.0.2.1 is routed into the test's "outside" namespace, which counts what
// arrives. A host-network zone (rauhad's namespace stands for the host's) and a bridged zone
// allowing 0.0.0.0/0 both reached it before.
TEST_F(NetworkTest, VerifySendsNoEgressProbeWhereThePolicyAllowsIt) {
  MakeOutside();
  std::string out;
  for (const std::string& cmd : {
           "ip -n " + outside_ + " addr add 192.0.2.1/32 dev eth0",
           "ip -n " + ns_ + " route add 192.0.2.1/32 via " + std::string(kOutsideAddr),
       }) {
    ASSERT_EQ(Sh(cmd, &out), 0) << cmd << ": " << out;
  }
  Listener probe_target(outside_, "192.0.2.1", 9);
  ASSERT_TRUE(probe_target.ok());
  ASSERT_TRUE(ConnectFrom(ns_, "192.0.2.1", 9, 2000)) << "the route to the target works";
  const int control = probe_target.WaitAccepted(1);
  ASSERT_EQ(control, 1);

  ASSERT_TRUE(CreateZone("any", BridgedPolicy({}, {"0.0.0.0/0"})).ok());
  ASSERT_TRUE(
      CreateZone("hostnet", "[zone]\ntype = \"privileged\"\n[network]\nmode = \"host\"\n").ok());
  for (const char* zone : {"any", "hostnet"}) {
    SCOPED_TRACE(zone);
    rauha::zone::v1::VerifyIsolationRequest req;
    req.set_zone_name(zone);
    rauha::zone::v1::VerifyIsolationResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->VerifyIsolation(&ctx, req, &resp).ok());
    bool found = false;
    for (const auto& c : resp.checks()) {
      if (c.name() != "try.network.egress") continue;
      found = true;
      EXPECT_TRUE(c.passed()) << c.detail();
      EXPECT_NE(c.detail().find("not attempted, nothing sent"), std::string::npos) << c.detail();
    }
    EXPECT_TRUE(found);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(probe_target.accepted(), control) << "a probe SYN reached the outside";
}

TEST_F(NetworkTest, Kill9AndRestartKeepsAddressesAndRemovesStrays) {
  ASSERT_TRUE(CreateZone("keep", BridgedPolicy({}, {"10.231.7.1/32:7001"})).ok());
  ASSERT_TRUE(CreateZone("lost", BridgedPolicy({})).ok());
  auto keep = GetZone("keep"), lost = GetZone("lost");
  daemon_->Kill9();
  // While rauhad is down: one zone's shim dies, and a stray veth appears on the bridge.
  ASSERT_EQ(::kill(static_cast<pid_t>(lost.shim_pid()), SIGKILL), 0);
  std::string out;
  ASSERT_EQ(Sh("ip -n " + ns_ + " link add rzdeadbeef type veth peer name rzpeer0", &out), 0)
      << out;
  ASSERT_EQ(Sh("ip -n " + ns_ + " link set rzdeadbeef master " + kBridge, &out), 0) << out;
  daemon_->Start();

  auto keep2 = GetZone("keep");
  EXPECT_EQ(keep2.state(), "Ready");
  EXPECT_EQ(keep2.address(), keep.address());
  EXPECT_EQ(GetZone("lost").state(), "Stopped");
  EXPECT_EQ(ZoneLinks(), std::vector<std::string>{"rz" + keep.id().substr(0, 8)});
  Listener gateway(ns_, kGateway, 7001);
  EXPECT_TRUE(ZoneConnects("keep", kGateway, 7001, 5));

  // The stopped zone still holds its address until it is deleted.
  ASSERT_TRUE(CreateZone("new", BridgedPolicy({})).ok());
  auto fresh = GetZone("new");
  EXPECT_NE(fresh.address(), keep.address());
  EXPECT_NE(fresh.address(), lost.address());
  ASSERT_TRUE(DeleteZone("lost").ok());
  ASSERT_TRUE(DeleteZone("new").ok());
  ASSERT_TRUE(CreateZone("again", BridgedPolicy({})).ok());
  EXPECT_EQ(GetZone("again").address(), lost.address()) << "released addresses are reused";
  std::string table = ListTable();
  EXPECT_EQ(table.find("zo_" + fresh.id().substr(0, 8)), std::string::npos) << table;
  EXPECT_EQ(table.find(fresh.address() + " "), std::string::npos) << table;
  // Daemon stop (TearDown) must leave no veth, bridge or table behind.
}

TEST_F(NetworkTest, CleanRestartBringsBridgedZonesBackWithTheirAddresses) {
  ASSERT_TRUE(CreateZone("web", BridgedPolicy({}, {"10.231.7.1/32:7002"})).ok());
  std::string address = GetZone("web").address();
  daemon_->Stop();
  // A clean stop removes the network; the zone and its address wait in the database.
  EXPECT_TRUE(ZoneLinks().empty());
  EXPECT_FALSE(LinkExists(kBridge));
  EXPECT_FALSE(TableExists());
  daemon_->Start();
  auto zone = GetZone("web");
  EXPECT_EQ(zone.state(), "Ready");
  EXPECT_EQ(zone.address(), address);
  Listener gateway(ns_, kGateway, 7002);
  EXPECT_TRUE(ZoneConnects("web", kGateway, 7002, 5));
}

// Packets nftables drops become enforcement events (layer nftables) naming source, destination
// and port: in the task's result, on WatchEvents and in the zone's counters. Zone to zone (the
// sender's allowed_zones does not name the receiver) and ingress (from "the outside").
TEST_F(NetworkTest, DroppedConnectionsAreEventsWithCounts) {
  MakeOutside();
  ASSERT_TRUE(CreateZone("za", BridgedPolicy({})).ok());
  ASSERT_TRUE(CreateZone("zb", BridgedPolicy({})).ok());
  std::string a = GetZone("za").address(), b = GetZone("zb").address();
  rauha::zone::v1::WatchEventsRequest wreq;
  wreq.set_zone_name("za");
  grpc::ClientContext wctx;
  // A missing event must fail the test, not hang it.
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = daemon_->Zones()->WatchEvents(&wctx, wreq);
  reader->WaitForInitialMetadata();

  auto r = RunIn("za", {"/usr/bin/python3", "-c", kClient, b, "8081", "1.5"});
  EXPECT_NE(r.stdout().find("failed"), std::string::npos) << r.stdout() << r.stderr();
  const rauha::sandbox::v1::EnforcementEventSummary* drop = nullptr;
  for (const auto& e : r.enforcement_events()) {
    if (e.layer() == "nftables") drop = &e;
  }
  ASSERT_NE(drop, nullptr) << r.DebugString();
  EXPECT_EQ(drop->hook(), "nftables/zone");
  EXPECT_EQ(drop->action(), "connect");
  EXPECT_EQ(drop->decision(), "deny");
  EXPECT_EQ(drop->object(), a + " -> " + b + ":8081/tcp");
  EXPECT_EQ(drop->source_zone(), "za");
  EXPECT_EQ(drop->target_zone(), "zb");

  // Ingress from the outside to za: no task runs, the event still reaches watchers.
  EXPECT_FALSE(ConnectFrom(outside_, a, 8080, 1000));
  bool zone_seen = false, ingress_seen = false;
  rauha::zone::v1::ZoneEvent ev;
  std::string all;
  while (!(zone_seen && ingress_seen) && reader->Read(&ev)) {
    if (ev.event_type() != "enforcement") continue;
    auto j = nlohmann::json::parse(ev.message());
    all += j.dump() + "\n";
    if (j["layer"] != "nftables") continue;
    EXPECT_EQ(j["zone_name"], "za");
    if (j["hook"] == "nftables/zone") {
      zone_seen = true;
      EXPECT_EQ(j["object"], a + " -> " + b + ":8081/tcp");
    }
    if (j["hook"] == "nftables/ingress") {
      ingress_seen = true;
      EXPECT_EQ(j["object"], std::string(kOutsideAddr) + " -> " + a + ":8080/tcp");
      EXPECT_EQ(j["action"], "ingress");
    }
  }
  wctx.TryCancel();
  reader->Finish();
  EXPECT_TRUE(zone_seen && ingress_seen) << all;

  // Counted per hook (the watcher saw them, so they were counted before).
  std::map<std::string, uint64_t> denied;
  auto za = GetZone("za"), zb = GetZone("zb");
  for (const auto& c : za.enforcement_counters()) {
    denied[c.hook()] = c.denied();
    if (c.hook().rfind("nftables/", 0) == 0) {
      EXPECT_EQ(c.layer(), "nftables");
    }
  }
  EXPECT_GE(denied["nftables/zone"], 1u);
  EXPECT_GE(denied["nftables/ingress"], 1u);
  // zb dropped nothing: the drop was za's.
  for (const auto& c : zb.enforcement_counters()) {
    EXPECT_NE(c.hook().rfind("nftables/", 0), 0u) << c.hook();
  }
}

// UDP from `ns` (a name under /run/netns, or a /proc/PID/ns/net path) to ip:7, which the test's
// rules allow and where nothing listens, until the ICMP "port unreachable" comes back: the path
// and its neighbours are resolved both ways, so no packet sent next waits in an ARP queue. Then
// `count` datagrams to ip:9. False when no answer came.
bool PrimeThenFlood(const std::string& ns, const std::string& ip, int count) {
  bool ok = false;
  std::thread t([&] {
    std::string path = ns.front() == '/' ? ns : "/run/netns/" + ns;
    int nsfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "entering " << path << ": " << std::strerror(errno);
      if (nsfd >= 0) ::close(nsfd);
      return;
    }
    ::close(nsfd);
    int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to7 = Addr(ip, 7), to9 = Addr(ip, 9);
    if (::connect(probe, reinterpret_cast<sockaddr*>(&to7), sizeof(to7)) != 0) {
      ADD_FAILURE() << "connect " << ip << ":7: " << std::strerror(errno);
      ::close(probe);
      return;
    }
    bool refused = false;
    for (int i = 0; i < 60 && !refused; ++i) {
      (void)!::send(probe, "p", 1, 0);
      pollfd p{probe, POLLIN, 0};
      char c;
      if (::poll(&p, 1, 500) == 1 && ::recv(probe, &c, 1, MSG_DONTWAIT) < 0 &&
          errno == ECONNREFUSED) {
        refused = true;
      }
    }
    ::close(probe);
    if (!refused) return;
    int flood = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (int i = 0; i < count; ++i) {
      if (::sendto(flood, "x", 1, 0, reinterpret_cast<sockaddr*>(&to9), sizeof(to9)) != 1) {
        ADD_FAILURE() << "sendto " << ip << ":9: " << std::strerror(errno);
        break;
      }
    }
    ::close(flood);
    ok = true;
  });
  t.join();
  return ok;
}

// Drop events are rate-limited (20 a second, burst 50, per zone and kind); the count of drops
// is not: ZoneStats.egress counts every packet the zone's chains dropped (nftables counters),
// here 300 sent out of the zone's network namespace and 500 sent in from the outside, far more
// than the rate logs. (The zone's egress packets are sent by the test from the zone's network
// namespace but outside its cgroup: a task's own would be refused by cgroup-bpf first, with
// EPERM, never reaching nftables.)
TEST_F(NetworkTest, EveryDropIsCountedBeyondTheEventRate) {
  MakeOutside();
  constexpr int kOut = 300, kIn = 500;
  const std::string allowed = std::string(kOutsideAddr) + "/32:7";
  ASSERT_TRUE(CreateZone("za", BridgedPolicy({}, {allowed}, {allowed})).ok());
  const auto zone = GetZone("za");
  auto stats = [&] {
    rauha::zone::v1::ZoneStatsRequest req;
    req.set_zone_name("za");
    rauha::zone::v1::ZoneStatsResponse resp;
    grpc::ClientContext ctx;
    auto st = daemon_->Zones()->ZoneStats(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.egress();
  };
  // Packets cross the veths in softirq context, after send() returned: wait for the count.
  auto wait_for = [&](const std::function<uint64_t(const rauha::zone::v1::EgressStats&)>& field,
                      uint64_t want) {
    uint64_t got = 0;
    for (int i = 0; i < 600 && (got = field(stats())) < want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return got;
  };
  auto initial = stats();
  ASSERT_TRUE(initial.nftables()) << daemon_->log();
  EXPECT_FALSE(initial.proxy()) << "no allowed_hosts, no proxy";
  EXPECT_EQ(initial.dropped_egress() + initial.dropped_zone() + initial.dropped_ingress(), 0u);

  ASSERT_TRUE(
      PrimeThenFlood("/proc/" + std::to_string(zone.shim_pid()) + "/ns/net", kOutsideAddr, kOut))
      << "no ICMP port unreachable from the outside";
  EXPECT_EQ(wait_for([](const auto& e) { return e.dropped_egress(); }, kOut), uint64_t{kOut});
  ASSERT_TRUE(PrimeThenFlood(outside_, zone.address(), kIn))
      << "no ICMP port unreachable from the zone";
  EXPECT_EQ(wait_for([](const auto& e) { return e.dropped_ingress(); }, kIn), uint64_t{kIn});

  auto final_stats = stats();
  EXPECT_EQ(final_stats.dropped_egress(), uint64_t{kOut});
  EXPECT_EQ(final_stats.dropped_ingress(), uint64_t{kIn});
  EXPECT_EQ(final_stats.dropped_zone(), 0u);
  // The events were rate-limited: fewer than the packets (burst 50 plus 20 a second).
  std::map<std::string, uint64_t> denied;
  const auto za = GetZone("za");
  for (const auto& c : za.enforcement_counters()) denied[c.hook()] = c.denied();
  EXPECT_LT(denied["nftables/egress"], uint64_t{kOut});
  EXPECT_LT(denied["nftables/ingress"], uint64_t{kIn});

  // A policy change rewrites the chains and keeps the counters.
  ASSERT_TRUE(ApplyPolicy("za", BridgedPolicy({}, {std::string(kOutsideAddr) + "/32:8"})).ok());
  EXPECT_EQ(stats().dropped_ingress(), uint64_t{kIn});
  // Deleting the zone removes its counters with its chains (another zone keeps the table).
  ASSERT_TRUE(CreateZone("zb", BridgedPolicy({})).ok());
  auto short_id = [&](const std::string& name) { return GetZone(name).id().substr(0, 8); };
  const std::string za_id = short_id("za"), zb_id = short_id("zb");
  EXPECT_NE(ListTable().find("counter di_" + za_id), std::string::npos) << ListTable();
  ASSERT_TRUE(DeleteZone("za").ok());
  std::string table = ListTable();
  EXPECT_NE(table.find("counter di_" + zb_id), std::string::npos) << table;
  for (const char* kind : {"de_", "dz_", "di_"}) {
    EXPECT_EQ(table.find(kind + za_id), std::string::npos) << table;
  }
}

// A lookup that cannot reach a resolver (no rule allows port 53) fails with the resolver's
// terse message; the result says why and what to change.
TEST_F(NetworkTest, FailedNameLookupInAZoneWithoutDnsGetsAHint) {
  ASSERT_TRUE(CreateZone("nodns", BridgedPolicy({})).ok());
  auto r = RunIn("nodns",
                 {"/usr/bin/python3", "-c", "import socket\nsocket.getaddrinfo('pypi.org', 443)"});
  EXPECT_EQ(r.status(), "failed") << r.stderr();
  std::string hint;
  for (const auto& e : r.events()) {
    if (e.kind() == "hint") hint = e.message();
  }
  EXPECT_NE(hint.find("no DNS"), std::string::npos) << r.DebugString();
  EXPECT_NE(hint.find("allowed_egress"), std::string::npos) << hint;
}

// The warm pool (--warm-zones) makes a bridged zone's network ahead too: a pooled call gets
// eth0 with its address and the policy's rules, and its veth goes with the zone after it.
TEST_F(NetworkTest, PooledBridgedZoneComesWithItsNetworkAndLeavesNoLink) {
  daemon_->Stop();
  daemon_->set_extra_args(
      {"--bridge", kBridge, "--subnet", kSubnet, "--nft-table", kTable, "--warm-zones", "1"});
  daemon_->Start();
  const std::string policy = BridgedPolicy({}, {"10.231.7.1/32:7000"});
  Listener gateway(ns_, kGateway, 7000);
  ASSERT_TRUE(gateway.ok());
  auto call = [&] {
    rauha::sandbox::v1::RunSandboxRequest req;
    req.set_policy_toml(policy);
    for (const char* c : {"/usr/bin/python3", "-c", kClient, kGateway, "7000", "5"})
      req.add_command(c);
    rauha::sandbox::v1::SandboxResult result;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    auto st = daemon_->Sandbox()->RunSandbox(&ctx, req, &result);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return result;
  };
  auto zone_dirs = [&] {
    std::set<std::string> ids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(daemon_->dir() + "/run/zones", ec))
      ids.insert(e.path().filename().string());
    return ids;
  };
  auto wait_for = [](const std::function<bool()>& done) {
    for (int i = 0; i < 3000 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return done();
  };
  // The policy's first call takes the ordinary path; from then on it is pooled.
  auto first = call();
  EXPECT_NE(first.stdout().find("connected"), std::string::npos) << first.stderr();
  ASSERT_TRUE(wait_for([&] { return ZoneLinks().size() == 1; }))
      << "no pooled bridged zone with its veth appeared";
  std::set<std::string> before;
  ASSERT_TRUE(wait_for([&] {
    before = zone_dirs();
    for (const auto& id : before) {
      if (!PooledZoneReady(*daemon_, id)) return false;
    }
    return !before.empty();
  })) << "the pooled bridged zone never became ready";
  auto second = call();
  EXPECT_TRUE(before.count(second.zone_id())) << "the call was not served from the pool";
  EXPECT_NE(second.stdout().find("connected"), std::string::npos)
      << "the pooled zone's egress rule does not hold: " << second.stdout() << second.stderr();
  EXPECT_GE(gateway.WaitAccepted(2), 2);
  // Its veth goes with it; the pool's next zone brings its own.
  EXPECT_TRUE(wait_for([&] {
    return !zone_dirs().count(second.zone_id()) && ZoneLinks().size() == 1;
  })) << "the used zone's veth or directory is left, or the pool did not refill";
}

}  // namespace
}  // namespace rauha::testing
