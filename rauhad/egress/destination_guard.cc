#include "rauhad/egress/destination_guard.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

namespace rauha::egress {
namespace {

bool SameAddress(const sockaddr_storage& a, const sockaddr* b) {
  if (!b || a.ss_family != b->sa_family) return false;
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(b)->sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(b)->sin6_addr, 16) == 0;
  }
  return false;
}

std::string RefusedV4(uint32_t host_order) {
  uint8_t first = static_cast<uint8_t>(host_order >> 24);
  if (first == 0) return "an unspecified address (0.0.0.0/8)";
  if (first == 127) return "loopback";
  if ((host_order & 0xffff0000u) == 0xa9fe0000u) return "link-local (169.254.0.0/16, metadata)";
  if (first >= 224) return "multicast or reserved";
  return "";
}

}  // namespace

std::string AddressText(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, buf, sizeof(buf));
  } else if (addr.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

std::string RefusedDestination(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    std::string why = RefusedV4(ntohl(reinterpret_cast<const sockaddr_in&>(addr).sin_addr.s_addr));
    if (!why.empty()) return why;
  } else if (addr.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED(&a)) return "an unspecified address (::)";
    if (IN6_IS_ADDR_LOOPBACK(&a)) return "loopback";
    if (IN6_IS_ADDR_LINKLOCAL(&a)) return "link-local (fe80::/10)";
    if (IN6_IS_ADDR_MULTICAST(&a)) return "multicast";
    if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
      uint32_t v4;
      std::memcpy(&v4, a.s6_addr + 12, 4);
      std::string why = RefusedV4(ntohl(v4));
      if (!why.empty()) return why;
      return "an IPv4-mapped address";
    }
  } else {
    return "not an IP address";
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "unknown (the host's addresses could not be read)";
  std::string why;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (SameAddress(addr, i->ifa_addr)) {
      why = std::string("the host's own address (") + i->ifa_name + ")";
      break;
    }
  }
  ::freeifaddrs(list);
  return why;
}

}  // namespace rauha::egress
