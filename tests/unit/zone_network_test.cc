// IPAM and nftables rule text for bridged zones: no kernel needed.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "rauha-common/policy/policy.h"
#include "rauhad/net/firewall.h"
#include "rauhad/net/ipam.h"
#include "rauhad/net/pod_firewall.h"
#include "rauhad/store/store.h"

namespace rauha::net {
namespace {

class TempDb {
 public:
  TempDb() {
    char tmpl[] = "/tmp/rauha-ipam-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempDb() { std::filesystem::remove_all(dir_); }
  std::unique_ptr<store::Store> Open() { return *store::Store::Open(dir_ + "/rauha.db"); }

 private:
  std::string dir_;
};

TEST(SubnetTest, ParsesPrivateCidrsAndRefusesNonsense) {
  auto s = Subnet::Parse("10.89.0.0/24");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->Gateway(), "10.89.0.1");
  EXPECT_EQ(s->GatewayCidr(), "10.89.0.1/24");
  EXPECT_EQ(FormatIpv4(s->Broadcast()), "10.89.0.255");
  for (const char* bad : {"10.89.0.0", "10.89.0.1/24", "10.89.0.0/31", "10.89.0.0/4", "zone/24",
                          "10.89.0.0/x", "::1/64"}) {
    EXPECT_FALSE(Subnet::Parse(bad).ok()) << bad;
  }
}

TEST(IpamTest, AddressesAreDistinctPersistentAndComeBack) {
  TempDb db;
  auto subnet = *Subnet::Parse("10.89.0.0/29");  // .2 .. .6: five zones
  {
    auto store = db.Open();
    Ipam ipam(subnet, store.get());
    EXPECT_EQ(*ipam.Allocate("a"), "10.89.0.2");
    EXPECT_EQ(*ipam.Allocate("b"), "10.89.0.3");
    EXPECT_EQ(*ipam.Allocate("a"), "10.89.0.2") << "a zone keeps its address";
  }
  // A new daemon on the same database hands out neither address again.
  auto store = db.Open();
  Ipam ipam(subnet, store.get());
  EXPECT_TRUE(ipam.HasAny());
  EXPECT_EQ(ipam.Lookup("b"), "10.89.0.3");
  EXPECT_EQ(*ipam.Allocate("c"), "10.89.0.4");
  ASSERT_TRUE(ipam.Release("a").ok());
  EXPECT_EQ(ipam.Lookup("a"), "");
  EXPECT_EQ(*ipam.Allocate("d"), "10.89.0.2") << "released addresses are reused";
  EXPECT_EQ(*ipam.Allocate("e"), "10.89.0.5");
  EXPECT_EQ(*ipam.Allocate("f"), "10.89.0.6");
  auto full = ipam.Allocate("g");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("--subnet"), absl::string_view::npos);
  ASSERT_TRUE(ipam.ReleaseAllBut({"b", "c"}).ok());
  EXPECT_EQ(ipam.Lookup("d"), "");
  EXPECT_EQ(ipam.Lookup("c"), "10.89.0.4");
}

TEST(FirewallTest, ZoneChainsFollowThePolicyAndDefaultDeny) {
  Firewall fw("rauha", "rauha0", "10.89.0.0/24", "10.89.0.1", 0);
  auto p = policy::ParsePolicy(
      "[network]\nmode = \"bridged\"\nallowed_zones = [\"db\"]\n"
      "allowed_egress = [\"192.0.2.0/24:443\", \"198.51.100.7/32:0\", \"[2001:db8::]/32:443\"]\n"
      "allowed_ingress = [\"203.0.113.0/24:8080\"]\n",
      "test");
  ASSERT_TRUE(p.ok()) << p.status();
  ZoneRules z;
  z.zone_id = "1a2b3c4d-0000-4000-8000-000000000000";
  z.address = "10.89.0.2";
  z.peer_addresses = {"10.89.0.9"};
  z.egress = p->network.allowed_egress;
  z.ingress = p->network.allowed_ingress;
  std::string c = fw.ChainCommands(z);
  auto has = [&](const std::string& rule) {
    EXPECT_NE(c.find(rule), std::string::npos) << rule << "\nin:\n" << c;
  };
  has("flush chain inet rauha zo_1a2b3c4d\n");
  has("add rule inet rauha zo_1a2b3c4d ip daddr 10.89.0.9 accept\n");
  has("add rule inet rauha zo_1a2b3c4d ip daddr != 10.89.0.1 ip daddr 10.89.0.0/24 counter name "
      "\"dz_1a2b3c4d\" drop\n");
  has("add rule inet rauha zo_1a2b3c4d ip daddr 192.0.2.0/24 meta l4proto { tcp, udp } th dport "
      "443 accept\n");
  has("add rule inet rauha zo_1a2b3c4d ip daddr 198.51.100.7/32 accept\n");
  has("add rule inet rauha zi_1a2b3c4d ip saddr 203.0.113.0/24 meta l4proto { tcp, udp } th "
      "dport 8080 accept\n");
  has("add rule inet rauha zo_1a2b3c4d counter name \"de_1a2b3c4d\" drop\n");
  has("add element inet rauha zone_out { 10.89.0.2 : jump zo_1a2b3c4d }\n");
  // The peer rule comes before the subnet drop; the final drop comes last.
  EXPECT_LT(c.find("ip daddr 10.89.0.9 accept"), c.find("ip daddr 10.89.0.0/24 drop"));
  EXPECT_LT(c.find("198.51.100.7/32 accept"), c.find("zo_1a2b3c4d counter name \"de_"));
  EXPECT_EQ(c.find("2001:db8"), std::string::npos) << "zones have no IPv6 address";
  EXPECT_EQ(c.find("masquerade"), std::string::npos);
}

// Rules written without a port (as clients of the public project write them) mean every port
// and protocol: no l4proto/dport match in the zone's chain.
TEST(FirewallTest, RulesWithoutPortAcceptEveryPortAndProtocol) {
  Firewall fw("rauha", "rauha0", "10.89.0.0/24", "10.89.0.1", 0);
  auto p = policy::ParsePolicy(
      "[network]\nmode = \"bridged\"\nallowed_egress = [\"0.0.0.0/0\", \"10.1.2.3\", \"::/0\"]\n"
      "allowed_ingress = [\"203.0.113.0/24\"]\n",
      "test");
  ASSERT_TRUE(p.ok()) << p.status();
  ZoneRules z;
  z.zone_id = "1a2b3c4d-0000-4000-8000-000000000000";
  z.address = "10.89.0.2";
  z.egress = p->network.allowed_egress;
  z.ingress = p->network.allowed_ingress;
  std::string c = fw.ChainCommands(z);
  EXPECT_NE(c.find("add rule inet rauha zo_1a2b3c4d ip daddr 0.0.0.0/0 accept\n"),
            std::string::npos)
      << c;
  EXPECT_NE(c.find("add rule inet rauha zo_1a2b3c4d ip daddr 10.1.2.3/32 accept\n"),
            std::string::npos)
      << c;
  EXPECT_NE(c.find("add rule inet rauha zi_1a2b3c4d ip saddr 203.0.113.0/24 accept\n"),
            std::string::npos)
      << c;
  EXPECT_EQ(c.find("dport"), std::string::npos) << c;
}

// Each drop of a zone chain first logs to the NFLOG group, rate-limited, with a prefix naming
// the kind of drop and the zone; then drops what exceeded the rate, unlogged. Both count in
// the zone's counter for that kind, which the zone's chain commands create.
TEST(FirewallTest, ZoneChainDropsAreLoggedToTheGroupRateLimited) {
  Firewall fw("rauha", "rauha0", "10.89.0.0/24", "10.89.0.1", 7);
  ZoneRules z;
  z.zone_id = "1a2b3c4d-0000-4000-8000-000000000000";
  z.address = "10.89.0.2";
  std::string c = fw.ChainCommands(z);
  auto has = [&](const std::string& rule) {
    EXPECT_NE(c.find(rule), std::string::npos) << rule << "\nin:\n" << c;
  };
  has("add counter inet rauha de_1a2b3c4d\nadd counter inet rauha dz_1a2b3c4d\n"
      "add counter inet rauha di_1a2b3c4d\n");
  has("add rule inet rauha zo_1a2b3c4d ip daddr != 10.89.0.1 ip daddr 10.89.0.0/24 limit rate "
      "20/second burst 50 packets counter name \"dz_1a2b3c4d\" log prefix \"rauha/zone/1a2b3c4d\" "
      "group 7 drop\n"
      "add rule inet rauha zo_1a2b3c4d ip daddr != 10.89.0.1 ip daddr 10.89.0.0/24 counter name "
      "\"dz_1a2b3c4d\" drop\n");
  has("add rule inet rauha zo_1a2b3c4d limit rate 20/second burst 50 packets counter name "
      "\"de_1a2b3c4d\" log prefix \"rauha/egress/1a2b3c4d\" group 7 drop\n"
      "add rule inet rauha zo_1a2b3c4d counter name \"de_1a2b3c4d\" drop\n");
  has("add rule inet rauha zi_1a2b3c4d limit rate 20/second burst 50 packets counter name "
      "\"di_1a2b3c4d\" log prefix \"rauha/ingress/1a2b3c4d\" group 7 drop\n"
      "add rule inet rauha zi_1a2b3c4d counter name \"di_1a2b3c4d\" drop\n");
}

// libnftables' listing of every counter: the zones' drop counters of our table by zone, the
// rest (other names, other tables) ignored.
TEST(DropCountersTest, ParsesTheCountsOfEachZoneByKind) {
  auto counts = ParseDropCounters(
      "table inet rauha {\n\tcounter de_1a2b3c4d {\n\t\tpackets 500 bytes 14000\n\t}\n\n"
      "\tcounter di_1a2b3c4d {\n\t\tpackets 7 bytes 420\n\t}\n"
      "\tcounter dz_99999999 {\n\t\tpackets 3 bytes 180\n\t}\n"
      "\tcounter other {\n\t\tpackets 1 bytes 1\n\t}\n}\n"
      "table inet rauha_other {\n\tcounter de_77777777 {\n\t\tpackets 9 bytes 9\n\t}\n}\n"
      "table ip rauha {\n\tcounter de_66666666 {\n\t\tpackets 9 bytes 9\n\t}\n}\n",
      "rauha");
  ASSERT_TRUE(counts.ok()) << counts.status();
  ASSERT_EQ(counts->size(), 2u);
  EXPECT_EQ(counts->at("1a2b3c4d").egress, 500u);
  EXPECT_EQ(counts->at("1a2b3c4d").ingress, 7u);
  EXPECT_EQ(counts->at("1a2b3c4d").zone, 0u);
  EXPECT_EQ(counts->at("99999999").zone, 3u);
  EXPECT_TRUE(ParseDropCounters("", "rauha")->empty());
  EXPECT_FALSE(
      ParseDropCounters("table inet rauha {\ncounter de_1 {\npackets x bytes 1\n}\n}\n", "rauha")
          .ok());
  EXPECT_EQ(DropCounterName(DropKind::kIngress, "1a2b3c4d"), "di_1a2b3c4d");
}

// A pod's table (the namespace CNI made): loopback and replies pass, then allowed_zones by the
// named zones' addresses and allowed_ingress by CIDR:port (IPv6 too: a pod may have an IPv6
// address), and the rest drops, logged and counted as ingress.
TEST(PodFirewallTest, PodTableAcceptsPeersAndIngressRulesThenDrops) {
  auto p = policy::ParsePolicy(
      "[network]\nallowed_ingress = [\"10.77.0.0/24:7000\", \"[fd00::]/64:8080\"]\n", "test");
  ASSERT_TRUE(p.ok()) << p.status();
  PodRules r;
  r.zone_id = "1a2b3c4d-0000-4000-8000-000000000000";
  r.peer_addresses = {"10.77.0.9"};
  r.ingress = p->network.allowed_ingress;
  std::string table = PodTableName("rauha", r.zone_id);
  EXPECT_EQ(table, "rauha_1a2b3c4d");
  std::string c = PodTableCommands(table, r, 7);
  auto at = [&](const std::string& rule) {
    size_t pos = c.find(rule);
    EXPECT_NE(pos, std::string::npos) << rule << "\nin:\n" << c;
    return pos;
  };
  size_t lo = at("add rule inet rauha_1a2b3c4d input iifname \"lo\" accept\n");
  size_t ct = at("add rule inet rauha_1a2b3c4d input ct state established,related accept\n");
  size_t peer = at("add rule inet rauha_1a2b3c4d input ip saddr 10.77.0.9 accept\n");
  size_t v4 =
      at("add rule inet rauha_1a2b3c4d input ip saddr 10.77.0.0/24 meta l4proto { tcp, udp } th "
         "dport 7000 accept\n");
  at("add rule inet rauha_1a2b3c4d input ip6 saddr fd00::/64 meta l4proto { tcp, udp } th dport "
     "8080 accept\n");
  size_t drop =
      at("add rule inet rauha_1a2b3c4d input limit rate 20/second burst 50 packets counter name "
         "\"di_1a2b3c4d\" log prefix \"rauha/ingress/1a2b3c4d\" group 7 drop\n"
         "add rule inet rauha_1a2b3c4d input counter name \"di_1a2b3c4d\" drop\n");
  EXPECT_LT(lo, peer);
  EXPECT_LT(ct, peer);
  EXPECT_LT(peer, drop);
  EXPECT_LT(v4, drop);
  // An update keeps the counter (add, never delete) and replaces the rules (flush).
  at("add counter inet rauha_1a2b3c4d di_1a2b3c4d\n");
  at("flush chain inet rauha_1a2b3c4d input\n");
  EXPECT_EQ(c.find("delete"), std::string::npos) << c;
  EXPECT_EQ(PodTableRebuildCommands(table, r, 7)
                .rfind("add table inet rauha_1a2b3c4d\ndelete table inet rauha_1a2b3c4d\n", 0),
            0u);
}

}  // namespace
}  // namespace rauha::net
