// Addresses for bridged zones, persistent in the metadata database: an address belongs to one
// zone from its creation until it is deleted, across daemon restarts and crashes.
//
// The default subnet, 10.89.0.0/24, is private (RFC 1918), outside the ranges Docker
// (172.17.0.0/16 and up), podman (10.88.0.0/16), libvirt (192.168.122.0/24) and most home
// routers (192.168.0.0/16) use, so it is unlikely to clash with anything on the host. The first
// address is the gateway (the bridge); zones get the second onwards.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "rauhad/store/store.h"

namespace rauha::net {

struct Subnet {
  uint32_t network = 0;  // host byte order
  int prefix_len = 0;

  // "10.89.0.0/24"; the prefix must leave room for a gateway and one zone (/8 .. /30).
  static absl::StatusOr<Subnet> Parse(const std::string& text);
  std::string Cidr() const;
  std::string Gateway() const;      // first address, "10.89.0.1"
  std::string GatewayCidr() const;  // "10.89.0.1/24", for the bridge
  uint32_t Broadcast() const;
};

std::string FormatIpv4(uint32_t host_order);

class Ipam {
 public:
  Ipam(Subnet subnet, store::Store* store) : subnet_(subnet), store_(store) {}

  // The zone's address: the one it already holds, or the lowest free one.
  absl::StatusOr<std::string> Allocate(const std::string& zone_id);
  // The zone's address, or "" when it holds none.
  std::string Lookup(const std::string& zone_id);
  absl::Status Release(const std::string& zone_id);
  // Frees the addresses of zones not in `zone_ids` (leftovers of an interrupted delete).
  absl::Status ReleaseAllBut(const std::set<std::string>& zone_ids);

  // Whether any zone holds an address (a previous run had bridged zones).
  bool HasAny();

  const Subnet& subnet() const { return subnet_; }

 private:
  Subnet subnet_;
  store::Store* store_;
  std::mutex mu_;
};

}  // namespace rauha::net
