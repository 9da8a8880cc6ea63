// The head of what a zone's client sends the egress proxy: "CONNECT host:port HTTP/1.1" (a
// tunnel, TLS inside) or an absolute-form plain HTTP request ("GET http://host/path HTTP/1.1"),
// which is rewritten to origin form for the upstream server. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::egress {

inline constexpr size_t kMaxHeadBytes = 16 * 1024;

struct ProxyRequest {
  bool is_connect = false;
  // Lower case: a name, a dotted quad, or an IPv6 address in inet_ntop's canonical text
  // without its brackets ("CONNECT [2001:DB8:0::1]:443" -> "2001:db8::1").
  std::string host;
  uint16_t port = 0;
  size_t head_bytes = 0;      // the head's length in the buffer, "\r\n\r\n" included
  std::string upstream_head;  // plain HTTP: the head to send upstream (origin form, no Proxy-*)
};

// nullopt: the head is not complete yet. InvalidArgument (the message is for a 400 answer): a
// head that is not a proxy request we serve, or longer than kMaxHeadBytes.
absl::StatusOr<std::optional<ProxyRequest>> ParseProxyRequest(std::string_view buffer);

// A name a client may ask for: letters, digits, '-', '_' and '.' (lower-cased), or a dotted quad;
// text with a ':' must be an IPv6 address (no brackets), returned canonical.
std::optional<std::string> NormaliseHost(std::string_view host);

// inet_ntop's text of an IPv6 address ("2001:db8::1"); nullopt when `text` is not one.
std::optional<std::string> CanonicalIpv6(std::string_view text);

// "host:port", the host bracketed when it is an IPv6 address ("[::1]:443").
std::string HostPort(std::string_view host, uint16_t port);

}  // namespace rauha::egress
