#include "rauhad/net/ipam.h"

#include <arpa/inet.h>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::net {

std::string FormatIpv4(uint32_t host_order) {
  return StrCat((host_order >> 24) & 255, ".", (host_order >> 16) & 255, ".",
                (host_order >> 8) & 255, ".", host_order & 255);
}

absl::StatusOr<Subnet> Subnet::Parse(const std::string& text) {
  auto slash = text.find('/');
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("subnet \"", text, "\": ", why, "; write it as an IPv4 CIDR like 10.89.0.0/24"));
  };
  if (slash == std::string::npos) return bad("no prefix length");
  in_addr a{};
  if (::inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return bad("bad address");
  std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos)
    return bad("bad prefix length");
  Subnet s;
  s.prefix_len = std::stoi(len);
  if (s.prefix_len < 8 || s.prefix_len > 30) return bad("prefix length must be 8..30");
  uint32_t mask = ~uint32_t{0} << (32 - s.prefix_len);
  s.network = ntohl(a.s_addr);
  if ((s.network & ~mask) != 0) return bad("host bits are set");
  return s;
}

std::string Subnet::Cidr() const { return StrCat(FormatIpv4(network), "/", prefix_len); }
std::string Subnet::Gateway() const { return FormatIpv4(network + 1); }
std::string Subnet::GatewayCidr() const { return StrCat(Gateway(), "/", prefix_len); }
uint32_t Subnet::Broadcast() const { return network | ~(~uint32_t{0} << (32 - prefix_len)); }

absl::StatusOr<std::string> Ipam::Allocate(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(auto held, store_->ListAddresses());
  std::set<std::string> taken;
  for (const auto& a : held) {
    if (a.zone_id == zone_id) return a.address;
    taken.insert(a.address);
  }
  for (uint32_t ip = subnet_.network + 2; ip < subnet_.Broadcast(); ++ip) {
    std::string addr = FormatIpv4(ip);
    if (taken.count(addr)) continue;
    RAUHA_RETURN_IF_ERROR(store_->PutAddress({addr, zone_id}));
    return addr;
  }
  return absl::ResourceExhaustedError(
      StrCat("no free address left in ", subnet_.Cidr(), " (", taken.size(),
             " held); delete zones or start rauhad with a larger --subnet"));
}

std::string Ipam::Lookup(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto held = store_->ListAddresses();
  if (!held.ok()) return "";
  for (const auto& a : *held) {
    if (a.zone_id == zone_id) return a.address;
  }
  return "";
}

bool Ipam::HasAny() {
  std::lock_guard lock(mu_);
  auto held = store_->ListAddresses();
  return held.ok() && !held->empty();
}

absl::Status Ipam::Release(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  return store_->ReleaseAddresses(zone_id);
}

absl::Status Ipam::ReleaseAllBut(const std::set<std::string>& zone_ids) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(auto held, store_->ListAddresses());
  for (const auto& a : held) {
    if (!zone_ids.count(a.zone_id)) RAUHA_RETURN_IF_ERROR(store_->ReleaseAddresses(a.zone_id));
  }
  return absl::OkStatus();
}

}  // namespace rauha::net
