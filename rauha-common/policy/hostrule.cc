#include <arpa/inet.h>

#include <algorithm>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

constexpr std::string_view kHostRuleForm =
    "write a host name with an optional port, e.g. \"pypi.org:443\", \"*.githubusercontent.com\" "
    "(any name below it) or \"api.example.com\" (no port = 80 and 443); an address is "
    "\"10.0.0.1:80\" or, in brackets, \"[2001:db8::1]:443\"";

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

absl::StatusOr<HostRule> ParseHostRule(std::string_view text) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat("host \"", text, "\" ", what, "; ", kHostRuleForm));
  };
  HostRule r;
  std::string_view name = text;
  // "[2001:db8::1]:443": an IPv6 address, in brackets as in a URL (RFC 3986).
  std::string_view after_host = text;
  bool v6 = !text.empty() && text.front() == '[';
  if (v6) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("has '[' without ']'");
    name = text.substr(1, close - 1);
    after_host = text.substr(close + 1);
    if (!after_host.empty() && after_host.front() != ':') return fail("has text after ']'");
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    return fail("looks like an IPv6 address without brackets");
  }
  if (size_t colon = after_host.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = after_host.substr(colon + 1);
    if (!v6) name = text.substr(0, colon);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
      return fail("has a port that is not a number from 1 to 65535");
    uint32_t v = 0;
    for (char c : port) v = v * 10 + static_cast<uint32_t>(c - '0');
    if (v == 0 || v > 65535) return fail("has a port that is not a number from 1 to 65535");
    r.port = static_cast<uint16_t>(v);
  }
  if (v6) {
    std::string z(name);
    in6_addr a6{};
    char canonical[INET6_ADDRSTRLEN];
    if (z.size() >= INET6_ADDRSTRLEN || ::inet_pton(AF_INET6, z.c_str(), &a6) != 1 ||
        !::inet_ntop(AF_INET6, &a6, canonical, sizeof(canonical))) {
      return fail("has brackets that do not hold an IPv6 address");
    }
    r.host = canonical;
    r.text = StrCat("[", r.host, "]", r.port ? StrCat(":", r.port) : std::string());
    return r;
  }
  if (name.substr(0, 2) == "*.") {
    r.wildcard = true;
    name.remove_prefix(2);
  }
  if (name.empty()) return fail("has no name");
  if (name.size() > 253) return fail("is longer than 253 characters");
  std::string lower;
  for (char c : name) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  // Labels of letters, digits, '-' and '_', 1 to 63 each; no empty label, no trailing dot.
  size_t start = 0;
  while (start <= lower.size()) {
    size_t dot = lower.find('.', start);
    if (dot == std::string::npos) dot = lower.size();
    std::string_view label = std::string_view(lower).substr(start, dot - start);
    if (label.empty() || label.size() > 63) return fail("has an empty or too long label");
    for (char c : label) {
      if (!IsLabelChar(c)) {
        return fail(c == '*' ? "has '*' other than as the first label (\"*.example.com\")"
                             : "has a character other than letters, digits, '-', '_' and '.'");
      }
    }
    if (label.front() == '-' || label.back() == '-')
      return fail("has a label starting or ending with '-'");
    start = dot + 1;
  }
  in_addr a{};
  if (r.wildcard && ::inet_pton(AF_INET, lower.c_str(), &a) == 1)
    return fail("puts '*.' before an address");
  r.host = lower;
  r.text = StrCat(r.wildcard ? "*." : "", lower, r.port ? StrCat(":", r.port) : std::string());
  return r;
}

absl::Status ValidateHeaderName(std::string_view name) {
  constexpr std::string_view kRule =
      "a header name is 1 to 64 letters, digits and !#$%&'*+-.^_`|~ (e.g. \"Authorization\", "
      "\"X-Api-Key\")";
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(StrCat("header name has ", name.size(), " bytes; ", kRule));
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok)
      return absl::InvalidArgumentError(StrCat("header name has a character not allowed; ", kRule));
  }
  for (std::string_view hop : {"host", "content-length", "transfer-encoding", "connection",
                               "proxy-authorization", "upgrade", "te", "trailer", "keep-alive"}) {
    if (name.size() == hop.size() && std::equal(name.begin(), name.end(), hop.begin(),
                                                [](char a, char b) { return (a | 0x20) == b; })) {
      return absl::InvalidArgumentError(
          StrCat("header ", name, " frames or routes the request; a secret cannot go there"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSecretFormat(std::string_view format) {
  constexpr std::string_view kRule =
      "a format is the header's value with \"{}\" once where the secret goes, e.g. \"Bearer "
      "{}\" or \"{}\"; printable ASCII, at most 1024 bytes";
  if (format.size() > 1024) {
    return absl::InvalidArgumentError(StrCat("format is ", format.size(), " bytes; ", kRule));
  }
  for (char c : format) {
    if ((c < 0x20 && c != '\t') || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError(StrCat("format has a character not allowed; ", kRule));
    }
  }
  size_t at = format.find("{}");
  if (at == std::string_view::npos || format.find("{}", at + 2) != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("format must hold \"{}\" exactly once; ", kRule));
  }
  return absl::OkStatus();
}

bool HostRuleAllows(const HostRule& rule, std::string_view host, uint16_t port) {
  if (rule.port != 0 ? port != rule.port : (port != 80 && port != 443)) return false;
  if (!rule.wildcard) return host == rule.host;
  // "*.example.com": names below it, not example.com itself.
  return host.size() > rule.host.size() + 1 && host.ends_with(rule.host) &&
         host[host.size() - rule.host.size() - 1] == '.';
}

}  // namespace rauha::policy
