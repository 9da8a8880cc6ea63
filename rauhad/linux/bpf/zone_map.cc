#include "rauhad/linux/bpf/zone_map.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::bpf {
namespace {

// addr/mask words in network order from family, address text and prefix length.
absl::Status FillRule(const ZoneRules& rules, std::string_view field, int family,
                      const std::string& address, int prefix_len, uint16_t port,
                      rauha_net_rule* out) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        StrCat("zone ", rules.zone_id, ": ", field, " \"", address, "\": ", what));
  };
  uint8_t bytes[16] = {};
  int bits = family == 6 ? 128 : 32;
  if ((family != 4 && family != 6) ||
      inet_pton(family == 6 ? AF_INET6 : AF_INET, address.c_str(), bytes) != 1)
    return fail(StrCat("not an IPv", family, " address"));
  if (prefix_len < 0 || prefix_len > bits) return fail(StrCat("bad prefix length ", prefix_len));
  uint8_t mask[16] = {};
  for (int i = 0; i < 16; ++i) {
    int left = prefix_len - i * 8;
    mask[i] = left >= 8 ? 0xff : left <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - left));
    bytes[i] &= mask[i];
  }
  std::memset(out, 0, sizeof(*out));
  out->family = static_cast<uint8_t>(family);
  out->prefix_len = static_cast<uint8_t>(prefix_len);
  out->port = port;
  std::memcpy(out->addr, bytes, 16);
  std::memcpy(out->mask, mask, 16);
  return absl::OkStatus();
}

absl::Status FillRules(const ZoneRules& rules, std::string_view field,
                       const std::vector<policy::NetRule>& in, rauha_net_rule* out,
                       uint8_t* count) {
  if (in.size() > RAUHA_MAX_NET_RULES)
    return absl::InvalidArgumentError(StrCat("zone ", rules.zone_id, ": ", in.size(), " ", field,
                                             " rules, the eBPF enforcer holds at most ",
                                             RAUHA_MAX_NET_RULES));
  for (size_t i = 0; i < in.size(); ++i) {
    RAUHA_RETURN_IF_ERROR(
        FillRule(rules, field, in[i].family, in[i].address, in[i].prefix_len, in[i].port, &out[i]));
  }
  *count = static_cast<uint8_t>(in.size());
  return absl::OkStatus();
}

absl::Status FillPrefixes(const ZoneRules& rules, std::string_view field,
                          const std::vector<std::string>& in, rauha_prefix* out, uint8_t* count) {
  if (in.size() > RAUHA_MAX_PREFIXES)
    return absl::InvalidArgumentError(StrCat("zone ", rules.zone_id, ": ", in.size(), " ", field,
                                             " paths, the eBPF enforcer holds at most ",
                                             RAUHA_MAX_PREFIXES));
  for (size_t i = 0; i < in.size(); ++i) {
    std::string p = in[i];
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos)
      return absl::InvalidArgumentError(
          StrCat("zone ", rules.zone_id, ": ", field, " \"", in[i], "\" is not an absolute path"));
    if (p.size() >= RAUHA_PREFIX_LEN)
      return absl::InvalidArgumentError(StrCat("zone ", rules.zone_id, ": ", field, " \"", in[i],
                                               "\" is longer than ", RAUHA_PREFIX_LEN - 1,
                                               " bytes, the eBPF enforcer's limit"));
    out[i].len = static_cast<uint32_t>(p.size());
    std::memcpy(out[i].s, p.data(), p.size());
  }
  *count = static_cast<uint8_t>(in.size());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<rauha_zone>> CompileZone(const ZoneRules& rules) {
  auto z = std::make_unique<rauha_zone>();
  std::memset(z.get(), 0, sizeof(*z));
  switch (rules.network_mode) {
    case policy::NetworkMode::kIsolated:
      z->network_mode = RAUHA_NET_ISOLATED;
      break;
    case policy::NetworkMode::kBridged:
      z->network_mode = RAUHA_NET_BRIDGED;
      break;
    case policy::NetworkMode::kHost:
      z->network_mode = RAUHA_NET_HOST;
      break;
  }
  z->allow_raw_sockets = rules.allow_raw_sockets ? 1 : 0;
  z->caps_allowed = rules.capabilities_allowed;
  RAUHA_RETURN_IF_ERROR(
      FillRules(rules, "network.allowed_egress", rules.egress, z->egress, &z->n_egress));
  RAUHA_RETURN_IF_ERROR(
      FillRules(rules, "network.allowed_ingress", rules.ingress, z->ingress, &z->n_ingress));
  if (rules.peer_addresses.size() > RAUHA_MAX_PEERS)
    return absl::InvalidArgumentError(
        StrCat("zone ", rules.zone_id, ": ", rules.peer_addresses.size(),
               " peer addresses, the eBPF enforcer holds at most ", RAUHA_MAX_PEERS));
  for (size_t i = 0; i < rules.peer_addresses.size(); ++i) {
    const std::string& a = rules.peer_addresses[i];
    int family = a.find(':') != std::string::npos ? 6 : 4;
    RAUHA_RETURN_IF_ERROR(
        FillRule(rules, "peer address", family, a, family == 6 ? 128 : 32, 0, &z->peers[i]));
  }
  z->n_peers = static_cast<uint8_t>(rules.peer_addresses.size());
  if (rules.devices.size() > RAUHA_MAX_DEVICES)
    return absl::InvalidArgumentError(StrCat("zone ", rules.zone_id, ": ", rules.devices.size(),
                                             " devices, the eBPF enforcer holds at most ",
                                             RAUHA_MAX_DEVICES));
  static_assert(ZoneRules::Device::kAnyMinor == RAUHA_DEV_ANY_MINOR);
  for (size_t i = 0; i < rules.devices.size(); ++i) {
    const ZoneRules::Device& d = rules.devices[i];
    if (d.type != 'c' && d.type != 'b')
      return absl::InvalidArgumentError(
          StrCat("zone ", rules.zone_id, ": device type '", d.type, "' is neither 'c' nor 'b'"));
    z->devices[i] = {static_cast<uint32_t>(d.type), d.major, d.minor};
  }
  z->n_devices = static_cast<uint8_t>(rules.devices.size());
  RAUHA_RETURN_IF_ERROR(FillPrefixes(rules, "filesystem.writable_paths", rules.writable_paths,
                                     z->writable, &z->n_writable));
  RAUHA_RETURN_IF_ERROR(
      FillPrefixes(rules, "exec.allowed", rules.exec_allowed, z->exec_allowed, &z->n_exec_allowed));
  RAUHA_RETURN_IF_ERROR(
      FillPrefixes(rules, "exec.denied", rules.exec_denied, z->exec_denied, &z->n_exec_denied));
  return z;
}

}  // namespace rauha::bpf
