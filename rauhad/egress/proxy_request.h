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
  std::string host;  // lower case; a name or a dotted quad
  uint16_t port = 0;
  size_t head_bytes = 0;      // the head's length in the buffer, "\r\n\r\n" included
  std::string upstream_head;  // plain HTTP: the head to send upstream (origin form, no Proxy-*)
};

// nullopt: the head is not complete yet. InvalidArgument (the message is for a 400 answer): a
// head that is not a proxy request we serve, or longer than kMaxHeadBytes.
absl::StatusOr<std::optional<ProxyRequest>> ParseProxyRequest(std::string_view buffer);

// A name a client may ask for: letters, digits, '-', '_' and '.' (lower-cased), or a dotted quad.
std::optional<std::string> NormaliseHost(std::string_view host);

}  // namespace rauha::egress
