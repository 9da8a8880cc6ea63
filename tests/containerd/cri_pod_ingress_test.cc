// Ingress into a pod: a pod's zone joins the network namespace CRI and CNI made, and rauhad
// installs the zone's nftables table inside it (allowed_zones by the named pods' addresses,
// allowed_ingress by CIDR:port, everything else dropped, each drop an `nftables` event and a
// count). Checked against the kernel: the table in the pod's namespace while the pod runs,
// changed by ApplyPolicy, and gone once the zone is (the namespace, held open here, outlives
// it).

#include "tests/containerd/cri_fixture.h"
#include "tests/integration/nft_list_in.h"

namespace rauha::testing {
namespace {

namespace zv = rauha::zone::v1;

// "rauha_1a2b3c4d": the zone's table (rauhad's default --nft-table, 8 hex digits of its id).
std::string TableOf(const std::string& zone_id) {
  std::string hex;
  for (char c : zone_id) {
    if (hex.size() < 8 && std::isxdigit(static_cast<unsigned char>(c))) hex += c;
  }
  return "rauha_" + hex;
}

class CriIngressTest : public CriTest {
 protected:
  zv::ZoneInfo GetZone(const std::string& name) {
    zv::GetZoneRequest req;
    req.set_name(name);
    zv::GetZoneResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->GetZone(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.zone();
  }

  void Apply(const std::string& zone, const std::string& toml) {
    ASSERT_FALSE(toml.empty());
    zv::ApplyPolicyRequest req;
    req.set_zone_name(zone);
    req.set_policy_toml(toml);
    zv::ApplyPolicyResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->ApplyPolicy(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // One connection attempt from a container of `pod` to ip:7000 (SYNs an nftables drop never
  // answers: nc gives up after 3 s); the container's log.
  std::string RefusedOnce(const std::string& pod, const cri::PodSandboxConfig& config,
                          const std::string& name, const std::string& ip) {
    std::string c =
        StartContainer(pod, config, name,
                       {"/bin/busybox", "sh", "-c",
                        "/bin/busybox nc -w 3 " + ip + " 7000 </dev/null; echo nc-exit=$?"});
    EXPECT_FALSE(c.empty());
    EXPECT_EQ(WaitExited(c).exit_code(), 0);
    return WaitLog(config.log_directory() + "/" + name + ".log", "nc-exit=");
  }

  // Connections from a container of `pod` to ip:7000, retried for up to 30 s, until one gets
  // the server's "pong"; the container's log.
  std::string Reaches(const std::string& pod, const cri::PodSandboxConfig& config,
                      const std::string& name, const std::string& ip) {
    std::string c = StartContainer(
        pod, config, name,
        {"/bin/busybox", "sh", "-c",
         "for i in $(/bin/busybox seq 100); do /bin/busybox nc -w 3 " + ip +
             " 7000 </dev/null | /bin/busybox grep -q pong && echo got-pong && exit 0; "
             "/bin/busybox sleep 0.1; done; echo no-pong; exit 1"});
    EXPECT_FALSE(c.empty());
    EXPECT_EQ(WaitExited(c).exit_code(), 0);
    return WaitLog(config.log_directory() + "/" + name + ".log", "-pong");
  }
};

TEST_F(CriIngressTest, PodsReachEachOtherExactlyWhenTheServersIngressAllowsIt) {
  // The server's preset accepts zone "pod-client" only, which does not exist yet: its address
  // enters the server's table when that pod's zone is made.
  auto server_config = PodConfig("server", {{"rauha.io/policy", "pod-peer"}});
  std::string server = RunPod(server_config);
  ASSERT_FALSE(server.empty());
  std::string server_zone = "k8s-" + server.substr(0, 12);
  std::string ip = PodIp(server);
  ASSERT_EQ(ip.rfind(kPodPrefix, 0), 0u) << ip;
  // Held: the namespace outlives the pod, so the test can look for the table afterwards.
  std::string netns_path = PodNetnsPath(server);
  UniqueFd netns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(netns) << netns_path;

  zv::ZoneInfo info = GetZone(server_zone);
  std::string table = TableOf(info.id());
  std::string listed = NftListIn(netns.get(), "list table inet " + table);
  EXPECT_NE(listed.find("hook input"), std::string::npos) << listed;
  EXPECT_NE(listed.find("counter name \"di_"), std::string::npos) << listed;
  EXPECT_NE(info.network_rules().find("add table inet " + table), std::string::npos)
      << info.network_rules();
  bool nft_layer = false;
  for (const auto& l : info.layers())
    nft_layer = nft_layer || (l.name() == "nftables" && l.active());
  EXPECT_TRUE(nft_layer) << info.DebugString();

  std::string listener = StartContainer(
      server, server_config, "server",
      {"/bin/busybox", "sh", "-c", "while :; do echo pong | /bin/busybox nc -l -p 7000; done"});
  ASSERT_FALSE(listener.empty());
  // Loopback inside the pod is not ingress: it passes whatever the policy says.
  std::string local_log = Reaches(server, server_config, "local", "127.0.0.1");
  EXPECT_NE(local_log.find("got-pong"), std::string::npos) << local_log;

  // The client pod (zone "pod-client", allowed egress to the pods' port 7000) gets through.
  auto client_config =
      PodConfig("client", {{"rauha.io/policy", "pod-egress"}, {"rauha.io/zone", "pod-client"}});
  std::string client = RunPod(client_config);
  ASSERT_FALSE(client.empty());
  std::string client_ip = PodIp(client);
  listed = NftListIn(netns.get(), "list table inet " + table);
  EXPECT_NE(listed.find("ip saddr " + client_ip + " accept"), std::string::npos) << listed;
  std::string log = Reaches(client, client_config, "by-zone", ip);
  EXPECT_NE(log.find("got-pong"), std::string::npos) << log;

  // The server's policy changed to no ingress at all: the same client, still allowed its
  // egress, is dropped at the server's door; the drop is an nftables event of the server's
  // zone and counts in its stats.
  std::string standard = ReadAll(std::string(RAUHA_SOURCE_DIR) + "/policies/standard.toml");
  zv::WatchEventsRequest wreq;
  wreq.set_zone_name(server_zone);
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  auto reader = daemon_->Zones()->WatchEvents(&wctx, wreq);
  reader->WaitForInitialMetadata();
  Apply(server_zone, standard);
  listed = NftListIn(netns.get(), "list table inet " + table);
  EXPECT_EQ(listed.find("ip saddr " + client_ip), std::string::npos) << listed;
  log = RefusedOnce(client, client_config, "refused", ip);
  EXPECT_EQ(log.find("pong"), std::string::npos) << log;
  EXPECT_EQ(log.find("nc-exit=0"), std::string::npos) << log;
  bool seen = false;
  std::string all;
  zv::ZoneEvent ev;
  while (!seen && reader->Read(&ev)) {
    if (ev.event_type() != "enforcement") continue;
    auto j = nlohmann::json::parse(ev.message(), nullptr, false);
    all += ev.message() + "\n";
    // Only the client's connection counts (the bridge may send the pod other packets).
    if (j.is_discarded() || j.value("layer", "") != "nftables" ||
        j.value("object", "").rfind(client_ip + " -> " + ip + ":7000/tcp", 0) != 0) {
      continue;
    }
    seen = true;
    EXPECT_EQ(j.value("hook", ""), "nftables/ingress");
    EXPECT_EQ(j.value("action", ""), "ingress");
    EXPECT_EQ(j.value("zone_name", ""), server_zone);
  }
  wctx.TryCancel();
  reader->Finish();
  EXPECT_TRUE(seen) << "no nftables drop event of zone " << server_zone << ":\n" << all;
  {
    zv::ZoneStatsRequest req;
    req.set_zone_name(server_zone);
    zv::ZoneStatsResponse stats;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->ZoneStats(&ctx, req, &stats).ok());
    EXPECT_TRUE(stats.egress().nftables());
    EXPECT_GE(stats.egress().dropped_ingress(), 1u) << stats.DebugString();
  }

  // allowed_ingress by CIDR:port lets it through again.
  Apply(server_zone, ReplaceLine(standard, "allowed_ingress = []",
                                 std::string("allowed_ingress = [\"") + kPodSubnet + ":7000\"]"));
  log = Reaches(client, client_config, "by-cidr", ip);
  EXPECT_NE(log.find("got-pong"), std::string::npos) << log;

  StopAndRemove(client);
  StopAndRemove(server);
  // The zone is gone, and with it its table, from a namespace that is still there.
  EXPECT_TRUE(ZoneNames().empty());
  listed = NftListIn(netns.get(), "list tables");
  EXPECT_EQ(listed.find(table), std::string::npos) << listed;
  EXPECT_EQ(NftListIn(netns.get(), "list table inet " + table), "");
}

}  // namespace
}  // namespace rauha::testing
