// ZoneRules -> the BPF zone map value: what the kernel programs will compare against.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "rauha-common/policy/policy.h"
#include "rauhad/enforcement_hub.h"
#include "rauhad/linux/bpf/zone_map.h"

namespace rauha::bpf {
namespace {

uint32_t Word(const char* v4) {
  uint32_t w = 0;
  inet_pton(AF_INET, v4, &w);
  return w;
}

TEST(BpfZoneMapTest, EgressRulesBecomeMaskedNetworkOrderWords) {
  ZoneRules r;
  r.zone_id = "z";
  r.network_mode = policy::NetworkMode::kBridged;
  r.egress = {*policy::ParseNetRule("10.0.0.0/8:443"), *policy::ParseNetRule("[2001:db8::]/32:0")};
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ((*z)->network_mode, RAUHA_NET_BRIDGED);
  ASSERT_EQ((*z)->n_egress, 2);
  const rauha_net_rule& v4 = (*z)->egress[0];
  EXPECT_EQ(v4.family, 4);
  EXPECT_EQ(v4.port, 443);
  EXPECT_EQ(v4.addr[0], Word("10.0.0.0"));
  EXPECT_EQ(v4.mask[0], Word("255.0.0.0"));
  EXPECT_EQ(v4.mask[1], 0u);
  const rauha_net_rule& v6 = (*z)->egress[1];
  EXPECT_EQ(v6.family, 6);
  EXPECT_EQ(v6.port, 0);
  EXPECT_EQ(v6.mask[0], 0xffffffffu);
  EXPECT_EQ(v6.mask[1], 0u);
  uint8_t want[16];
  inet_pton(AF_INET6, "2001:db8::", want);
  EXPECT_EQ(std::memcmp(v6.addr, want, 16), 0);
}

// "0.0.0.0/0" and "::/0" (no port) compile to rules the programs read as every port.
TEST(BpfZoneMapTest, RulesWithoutPortMatchEveryPort) {
  ZoneRules r;
  r.zone_id = "z";
  r.network_mode = policy::NetworkMode::kBridged;
  r.egress = {*policy::ParseNetRule("0.0.0.0/0"), *policy::ParseNetRule("::/0"),
              *policy::ParseNetRule("10.1.2.3")};
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_EQ((*z)->n_egress, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*z)->egress[i].port, 0) << "port 0 = every port";
  EXPECT_EQ((*z)->egress[0].mask[0], 0u);
  EXPECT_EQ((*z)->egress[1].family, 6);
  EXPECT_EQ((*z)->egress[1].mask[0], 0u);
  EXPECT_EQ((*z)->egress[2].mask[0], 0xffffffffu);
}

// The baseline devices reach the cgroup/dev program as the host's numbers; /dev/pts as every
// pseudo-terminal (136:*), which only a wildcard minor can say.
TEST(BpfZoneMapTest, BaselineDevicesResolveToTheirNumbersAndPtsToAnyMinor) {
  std::vector<ZoneRules::Device> devices = ResolveDevices(policy::BaselineDevices());
  auto has = [&](uint32_t major, uint32_t minor) {
    for (const auto& d : devices)
      if (d.type == 'c' && d.major == major && d.minor == minor) return true;
    return false;
  };
  EXPECT_TRUE(has(1, 3)) << "/dev/null";
  EXPECT_TRUE(has(1, 5)) << "/dev/zero";
  EXPECT_TRUE(has(1, 7)) << "/dev/full";
  EXPECT_TRUE(has(1, 8)) << "/dev/random";
  EXPECT_TRUE(has(1, 9)) << "/dev/urandom";
  EXPECT_TRUE(has(5, 0)) << "/dev/tty";
  EXPECT_TRUE(has(5, 2)) << "/dev/ptmx";
  EXPECT_TRUE(has(136, ZoneRules::Device::kAnyMinor)) << "/dev/pts";
  ZoneRules r;
  r.devices = devices;
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ((*z)->n_devices, devices.size());
  bool wildcard = false;
  for (size_t i = 0; i < devices.size(); ++i)
    wildcard = wildcard ||
               ((*z)->devices[i].major == 136 && (*z)->devices[i].minor == RAUHA_DEV_ANY_MINOR);
  EXPECT_TRUE(wildcard);
}

TEST(BpfZoneMapTest, PeersMatchOneHostOnAnyPort) {
  ZoneRules r;
  r.peer_addresses = {"10.89.0.7", "fd00::7"};
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_EQ((*z)->n_peers, 2);
  EXPECT_EQ((*z)->peers[0].prefix_len, 32);
  EXPECT_EQ((*z)->peers[0].mask[0], 0xffffffffu);
  EXPECT_EQ((*z)->peers[1].family, 6);
  EXPECT_EQ((*z)->peers[1].mask[3], 0xffffffffu);
}

TEST(BpfZoneMapTest, PathsLoseTrailingSlashesAndRootStaysRoot) {
  ZoneRules r;
  r.writable_paths = {"/tmp/", "/"};
  r.exec_denied = {"/usr/sbin"};
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_EQ((*z)->n_writable, 2);
  EXPECT_STREQ((*z)->writable[0].s, "/tmp");
  EXPECT_EQ((*z)->writable[0].len, 4u);
  EXPECT_STREQ((*z)->writable[1].s, "/");
  EXPECT_EQ((*z)->n_exec_denied, 1);
  EXPECT_EQ((*z)->n_exec_allowed, 0);
}

TEST(BpfZoneMapTest, DevicesCapabilitiesAndRawSockets) {
  ZoneRules r;
  r.devices = {{'c', 1, 3}, {'b', 7, 0}};
  r.capabilities_allowed = (1ull << 13) | 1;
  r.allow_raw_sockets = true;
  absl::StatusOr<std::unique_ptr<rauha_zone>> z = CompileZone(r);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_EQ((*z)->n_devices, 2);
  EXPECT_EQ((*z)->devices[0].type, static_cast<uint32_t>('c'));
  EXPECT_EQ((*z)->devices[1].type, static_cast<uint32_t>('b'));
  EXPECT_EQ((*z)->devices[1].major, 7u);
  EXPECT_EQ((*z)->caps_allowed, (1ull << 13) | 1);
  EXPECT_EQ((*z)->allow_raw_sockets, 1);
}

TEST(BpfZoneMapTest, RefusesWhatTheMapCannotHoldNamingTheField) {
  ZoneRules r;
  r.zone_id = "big";
  for (int i = 0; i <= RAUHA_MAX_NET_RULES; ++i)
    r.egress.push_back(*policy::ParseNetRule("10.0.0.1:" + std::to_string(i + 1)));
  absl::Status s = CompileZone(r).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("network.allowed_egress"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("zone big"), std::string::npos) << s;

  ZoneRules p;
  p.writable_paths = {"relative"};
  EXPECT_EQ(CompileZone(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.writable_paths = {"/" + std::string(RAUHA_PREFIX_LEN, 'a')};
  s = CompileZone(p).status();
  EXPECT_NE(std::string(s.message()).find("longer than"), std::string::npos) << s;

  ZoneRules d;
  d.devices = {{'x', 1, 1}};
  EXPECT_EQ(CompileZone(d).status().code(), absl::StatusCode::kInvalidArgument);
  ZoneRules a;
  a.peer_addresses = {"not-an-address"};
  EXPECT_EQ(CompileZone(a).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rauha::bpf
