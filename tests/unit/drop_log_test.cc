// What nftables' log of a dropped packet becomes: the parse of NFLOG's prefix and payload, the
// enforcement event, and the DNS hint a task gets when its lookups could not reach a resolver.
#include <gtest/gtest.h>

#include <string>

#include "rauhad/net/dns_hint.h"
#include "rauhad/net/drop_event.h"
#include "rauhad/net/drop_packet.h"

namespace rauha::net {
namespace {

// An IPv4 header (no options) from `src` to `dst` and, for TCP/UDP, the two ports.
std::string Packet(uint8_t proto, const uint8_t src[4], const uint8_t dst[4], uint16_t sport,
                   uint16_t dport, uint16_t frag = 0) {
  std::string p(20, '\0');
  p[0] = 0x45;
  p[6] = static_cast<char>(frag >> 8);
  p[7] = static_cast<char>(frag & 0xff);
  p[8] = 64;
  p[9] = static_cast<char>(proto);
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<char>(src[i]);
    p[16 + i] = static_cast<char>(dst[i]);
  }
  p += static_cast<char>(sport >> 8);
  p += static_cast<char>(sport & 0xff);
  p += static_cast<char>(dport >> 8);
  p += static_cast<char>(dport & 0xff);
  p += std::string(16, '\0');
  return p;
}

constexpr uint8_t kZoneA[4] = {10, 89, 0, 2};
constexpr uint8_t kZoneB[4] = {10, 89, 0, 3};

TEST(DropPacketTest, ParsesPrefixAddressesAndPorts) {
  auto p = ParseDroppedPacket(DropPrefix(DropKind::kZoneToZone, "1a2b3c4d"),
                              Packet(6, kZoneA, kZoneB, 40000, 8080));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, DropKind::kZoneToZone);
  EXPECT_EQ(p->zone_short_id, "1a2b3c4d");
  EXPECT_EQ(p->source, "10.89.0.2");
  EXPECT_EQ(p->destination, "10.89.0.3");
  EXPECT_EQ(p->protocol, "tcp");
  EXPECT_EQ(p->source_port, 40000);
  EXPECT_EQ(p->destination_port, 8080);
  EXPECT_EQ(DestinationText(*p), "10.89.0.3:8080/tcp");

  auto udp = ParseDroppedPacket("rauha/egress/00ff", Packet(17, kZoneA, kZoneB, 5353, 53));
  ASSERT_TRUE(udp.has_value());
  EXPECT_EQ(udp->kind, DropKind::kEgress);
  EXPECT_EQ(DestinationText(*udp), "10.89.0.3:53/udp");

  auto icmp = ParseDroppedPacket("rauha/ingress/abcd", Packet(1, kZoneA, kZoneB, 0x0800, 0));
  ASSERT_TRUE(icmp.has_value());
  EXPECT_EQ(icmp->kind, DropKind::kIngress);
  EXPECT_EQ(DestinationText(*icmp), "10.89.0.3/icmp");
}

TEST(DropPacketTest, LaterFragmentsCarryNoPorts) {
  auto p = ParseDroppedPacket("rauha/egress/1a2b3c4d", Packet(17, kZoneA, kZoneB, 1, 2, 0x00b9));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->destination_port, 0);
  EXPECT_EQ(DestinationText(*p), "10.89.0.3/udp");
}

TEST(DropPacketTest, RefusesWhatIsNotOursOrNotIpv4) {
  std::string ok = Packet(6, kZoneA, kZoneB, 1, 2);
  EXPECT_FALSE(ParseDroppedPacket("other/egress/1a2b", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/sideways/1a2b", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/xyz", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/1a2b3c4d5", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress", ok));
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/1a2b", ok.substr(0, 19)));
  std::string v6 = ok;
  v6[0] = 0x60;
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/1a2b", v6));
  std::string long_ihl = ok;
  long_ihl[0] = 0x4f;  // 60-byte header in a 40-byte packet
  EXPECT_FALSE(ParseDroppedPacket("rauha/egress/1a2b", long_ihl));
  // A truncated transport header: addresses, no ports.
  auto p = ParseDroppedPacket("rauha/egress/1a2b", ok.substr(0, 22));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->destination_port, 0);
}

TEST(DropEventTest, NamesLayerSourceDestinationPortAndTheZones) {
  auto p = ParseDroppedPacket("rauha/zone/1a2b3c4d", Packet(6, kZoneA, kZoneB, 40000, 8080));
  ASSERT_TRUE(p.has_value());
  EnforcementEvent e = DropEvent(*p, "zone-a-id", "zone-b-id", "b", 123);
  EXPECT_EQ(e.layer, "nftables");
  EXPECT_EQ(e.hook, "nftables/zone");
  EXPECT_EQ(e.action, "connect");
  EXPECT_EQ(e.decision, "deny");
  EXPECT_EQ(e.zone_id, "zone-a-id");
  EXPECT_EQ(e.target_zone, "zone-b-id");
  EXPECT_EQ(e.time_ns, 123);
  EXPECT_EQ(e.object, "10.89.0.2 -> 10.89.0.3:8080/tcp");
  EXPECT_NE(e.message.find("allowed_zones does not name zone b"), std::string::npos) << e.message;

  auto in = ParseDroppedPacket("rauha/ingress/1a2b3c4d", Packet(17, kZoneB, kZoneA, 9, 53));
  ASSERT_TRUE(in.has_value());
  EnforcementEvent ie = DropEvent(*in, "zone-a-id", "", "", 1);
  EXPECT_EQ(ie.hook, "nftables/ingress");
  EXPECT_EQ(ie.action, "ingress");
  EXPECT_NE(ie.message.find("allowed_ingress"), std::string::npos) << ie.message;
}

policy::Policy::Network Net(policy::NetworkMode mode, std::vector<uint16_t> egress_ports = {}) {
  policy::Policy::Network n;
  n.mode = mode;
  for (auto port : egress_ports) {
    policy::NetRule r;
    r.address = "10.0.0.53";
    r.prefix_len = 32;
    r.port = port;
    n.allowed_egress.push_back(r);
  }
  return n;
}

TEST(DnsHintTest, HintsWhenALookupFailsInAZoneWithoutDns) {
  auto isolated = Net(policy::NetworkMode::kIsolated);
  auto hint =
      DnsHint(isolated, "", "socket.gaierror: [Errno -3] Temporary failure in name resolution", {});
  ASSERT_TRUE(hint.has_value());
  EXPECT_NE(hint->find("no DNS"), std::string::npos) << *hint;
  EXPECT_NE(hint->find("bridged"), std::string::npos) << *hint;
  EXPECT_NE(hint->find("allowed_hosts"), std::string::npos) << *hint;
  auto bridged = Net(policy::NetworkMode::kBridged, {443});
  auto b = DnsHint(bridged, "curl: (6) Could not resolve host: pypi.org", "", {});
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(b->find("allowed_egress"), std::string::npos) << *b;
  // No failure shown: no hint.
  EXPECT_FALSE(DnsHint(isolated, "ok", "", {}));
}

TEST(DnsHintTest, ADeniedPacketToPort53IsAFailedLookup) {
  EnforcementEvent e;
  e.decision = "deny";
  e.object = "10.89.0.2 -> 10.0.2.3:53/udp";
  EXPECT_TRUE(DnsHint(Net(policy::NetworkMode::kBridged), "", "", {e}));
  e.object = "10.0.2.3:53";
  EXPECT_TRUE(DnsHint(Net(policy::NetworkMode::kBridged), "", "", {e}));
  e.object = "10.0.2.3:530/udp";
  EXPECT_FALSE(DnsHint(Net(policy::NetworkMode::kBridged), "", "", {e}));
}

TEST(DnsHintTest, NoHintWhereAResolverIsAllowedOrTheHostsNetworkIsUsed) {
  const char* fail = "Temporary failure in name resolution";
  EXPECT_FALSE(DnsHint(Net(policy::NetworkMode::kBridged, {53}), "", fail, {}));
  EXPECT_FALSE(DnsHint(Net(policy::NetworkMode::kBridged, {0}), "", fail, {}));
  EXPECT_FALSE(DnsHint(Net(policy::NetworkMode::kHost), "", fail, {}));
}

}  // namespace
}  // namespace rauha::net
