// Addresses the egress proxy never connects to unless a rule names the address itself: the
// host's own addresses (any interface of rauhad's network namespace), loopback, link-local
// (169.254.0.0/16 holds cloud metadata services), unspecified, multicast and broadcast. The
// proxy must never be a way into the host or its metadata service.
#pragma once

#include <sys/socket.h>

#include <string>

namespace rauha::egress {

// "" when the proxy may connect to `addr`; else why not ("link-local", "the host's own
// address", ...). Reads the host's addresses (getifaddrs) each call: they change.
std::string RefusedDestination(const sockaddr_storage& addr);

std::string AddressText(const sockaddr_storage& addr);

}  // namespace rauha::egress
