#include "rauhad/egress/proxy_request.h"

#include <arpa/inet.h>

#include <algorithm>

#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != s.npos) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint32_t>(c - '0');
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

}  // namespace

std::optional<std::string> CanonicalIpv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string z(text);  // NUL-terminated for inet_pton; it refuses zone ids ("%eth0")
  in6_addr a{};
  if (::inet_pton(AF_INET6, z.c_str(), &a) != 1) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  if (!::inet_ntop(AF_INET6, &a, buf, sizeof(buf))) return std::nullopt;
  return std::string(buf);
}

std::string HostPort(std::string_view host, uint16_t port) {
  bool v6 = host.find(':') != std::string_view::npos;
  return StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

std::optional<std::string> NormaliseHost(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return CanonicalIpv6(host);
  if (host.empty() || host.size() > 253) return std::nullopt;
  std::string out;
  for (char c : host) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return std::nullopt;
    out += c;
  }
  if (out.front() == '.' || out.find("..") != std::string::npos) return std::nullopt;
  if (out.back() == '.') out.pop_back();  // "example.com." is example.com
  if (out.empty()) return std::nullopt;
  return out;
}

absl::StatusOr<std::optional<ProxyRequest>> ParseProxyRequest(std::string_view buffer) {
  size_t end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffer.size() >= kMaxHeadBytes) {
      return absl::InvalidArgumentError(StrCat("request head over ", kMaxHeadBytes, " bytes"));
    }
    return std::nullopt;
  }
  if (end + 4 > kMaxHeadBytes) {
    return absl::InvalidArgumentError(StrCat("request head over ", kMaxHeadBytes, " bytes"));
  }
  std::string_view head = buffer.substr(0, end + 2);  // each line ends with \r\n
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) {
    return absl::InvalidArgumentError("malformed request line");
  }
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return absl::InvalidArgumentError("only HTTP/1.0 and HTTP/1.1 are proxied");
  }
  ProxyRequest r;
  r.head_bytes = end + 4;
  std::string_view authority;
  std::string_view path = "/";
  if (method == "CONNECT") {
    r.is_connect = true;
    authority = target;
  } else {
    constexpr std::string_view kHttp = "http://";
    if (target.size() < kHttp.size() || !EqualsNoCase(target.substr(0, kHttp.size()), kHttp)) {
      return absl::InvalidArgumentError(
          "plain requests must name an absolute http:// URL; use CONNECT for https");
    }
    std::string_view rest = target.substr(kHttp.size());
    size_t slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) path = rest.substr(slash);
    if (path.front() == '?') {
      // "http://host?q" has the empty path: origin form is "/?q".
      r.upstream_head = "/";
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError("user info is not proxied");
  }
  // RFC 3986 3.2.2: an IPv6 address is in brackets ("[::1]:443"); nothing else may hold one.
  std::string_view host, port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return absl::InvalidArgumentError("unclosed '[' in host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return absl::InvalidArgumentError("bad port");
      has_port = true;
      port_text = after.substr(1);
    }
    if (!CanonicalIpv6(host)) {
      return absl::InvalidArgumentError("the brackets do not hold an IPv6 address");
    }
  } else {
    if (authority.find_first_of("[]") != std::string_view::npos) {
      return absl::InvalidArgumentError("'[' or ']' outside an IPv6 literal");
    }
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.find(':') != std::string_view::npos) {
      return absl::InvalidArgumentError("an IPv6 address must be in brackets: [2001:db8::1]:443");
    }
  }
  if (has_port) {
    auto port = ParsePort(port_text);
    if (!port) return absl::InvalidArgumentError("bad port");
    r.port = *port;
  } else if (r.is_connect) {
    return absl::InvalidArgumentError("CONNECT needs host:port");
  } else {
    r.port = 80;
  }
  auto normal = NormaliseHost(host);
  if (!normal) return absl::InvalidArgumentError("bad host name");
  r.host = *normal;
  if (r.is_connect) return r;

  // Origin form, hop-by-hop proxy headers removed: they are for us, not the server.
  std::string out = StrCat(method, " ", r.upstream_head, path, " ", version, "\r\n");
  std::string_view rest = head.substr(line_end + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest.remove_prefix(e + 2);
    size_t c = h.find(':');
    std::string_view name = h.substr(0, c);
    if (EqualsNoCase(name, "Proxy-Connection") || EqualsNoCase(name, "Proxy-Authorization")) {
      continue;
    }
    out += StrCat(h, "\r\n");
  }
  out += "\r\n";
  r.upstream_head = std::move(out);
  return r;
}

}  // namespace rauha::egress
