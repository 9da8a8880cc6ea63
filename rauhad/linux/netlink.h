// Links, addresses and routes through rtnetlink (libnl-route-3), for bridged zones. No `ip`, no
// shell. Calls act on the network namespace of the calling thread, except the zone-side work of
// AttachZone, which runs through a netlink socket opened inside the zone's namespace by a
// short-lived helper thread (so no thread of rauhad's ever changes namespace for longer).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rauha::netlink {

// Creates the bridge if it is missing, gives it `gateway_cidr` ("10.89.0.1/24") and brings it
// up. An existing bridge of that name is reused; a non-bridge link of that name is an error.
absl::Status EnsureBridge(const std::string& bridge, const std::string& gateway_cidr);

struct ZoneLink {
  std::string bridge;        // host end is attached here
  std::string host_name;     // "rz1a2b3c4d"
  std::string zone_netns;    // "/proc/<shim pid>/ns/net"
  std::string address_cidr;  // zone's address, "10.89.0.2/32"
  std::string gateway;       // "10.89.0.1"
};

// Creates the veth pair (peer "eth0" born in the zone's namespace), attaches the host end to the
// bridge and brings it up; inside the zone sets the address, brings eth0 and lo up and routes
// everything via the gateway. On failure nothing is left (the host end is deleted).
absl::Status AttachZone(const ZoneLink& link);

// Deletes a link by name; a missing link is success (deleting a veth end removes its peer).
absl::Status DeleteLink(const std::string& name);

// Names of the links attached to `bridge` whose name starts with `prefix`. A missing bridge
// has none.
absl::StatusOr<std::vector<std::string>> BridgePorts(const std::string& bridge,
                                                     const std::string& prefix);

// Whether a link of this name exists in the caller's namespace.
bool LinkExists(const std::string& name);

}  // namespace rauha::netlink
