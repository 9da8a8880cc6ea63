// The proxy's way into a zone: a TCP listener on 127.0.0.1:kZoneProxyPort created inside the
// zone's network namespace (a socket belongs to the namespace it was made in, whatever thread
// later uses it). So isolated zones (loopback only) and bridged zones reach the proxy alike,
// with no route, veth or forwarder, and each connection's zone is known by its listener.
#pragma once

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::egress {

inline constexpr uint16_t kZoneProxyPort = 3128;

// A non-blocking listener in the network namespace of `pid` (the zone's shim). Accepted
// connections use a congestion control that does not pace (cubic, else reno): the hop is
// loopback, whatever the host's default.
absl::StatusOr<UniqueFd> ListenInZone(pid_t pid, uint16_t port = kZoneProxyPort);

}  // namespace rauha::egress
