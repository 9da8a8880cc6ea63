#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

constexpr std::string_view kRuleForm =
    "write CIDR or CIDR:port, e.g. \"10.0.0.0/8:443\", \"0.0.0.0/0\" (no port or port 0 = "
    "every port), \"[::]/0:443\" or \"::/0\"; a bare address means /32 (IPv4) or /128 "
    "(IPv6), and an IPv6 address without a prefix must be bracketed";

// Digits only, no sign or spaces; nullopt if empty, not a number or above `max`.
std::optional<uint32_t> ParseDecimal(std::string_view s, uint32_t max) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

}  // namespace

absl::StatusOr<NetRule> ParseNetRule(std::string_view text) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        StrCat("network rule \"", text, "\" ", what, "; ", kRuleForm));
  };
  if (text.find('\0') != std::string_view::npos) return fail("contains NUL");

  // Split "<address>[/<prefix>][:<port>]". A bracketed IPv6 address ends at ']'; otherwise a
  // '/' ends the address, and without one the address is IPv4, whose only ':' starts the
  // port: an unbracketed IPv6 address needs its /prefix to be unambiguous ("::1:80" could be
  // ::1 port 80 or ::1:80 with every port).
  std::string_view address, prefix, port;
  bool bracketed = false;
  bool has_prefix = false;
  bool has_port = false;
  std::string_view rest;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("has '[' without ']'");
    address = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    bracketed = true;
  } else {
    size_t end = text.find('/');
    if (end == std::string_view::npos) {
      size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
      if (colons > 1) return fail("has an IPv6 address without brackets or /prefix");
      end = text.find(':');
    }
    address = text.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : text.substr(end);
  }
  if (!rest.empty() && rest[0] == '/') {
    size_t colon = rest.find(':');
    prefix = rest.substr(1, colon == std::string_view::npos ? std::string_view::npos : colon - 1);
    has_prefix = true;
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
  }
  if (!rest.empty()) {
    if (rest[0] != ':') return fail("has something other than /prefix or :port after the address");
    port = rest.substr(1);
    has_port = true;
  }
  if (address.empty()) return fail("has no address");
  if (address.size() >= INET6_ADDRSTRLEN) return fail("has an address that is too long");

  NetRule rule;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, address.data(), address.size());
  std::array<uint8_t, 16> bytes{};
  size_t nbytes = 0;
  if (inet_pton(AF_INET, buf, bytes.data()) == 1) {
    if (bracketed) return fail("brackets an IPv4 address");
    rule.family = 4;
    nbytes = 4;
  } else if (inet_pton(AF_INET6, buf, bytes.data()) == 1) {
    if (!bracketed && !has_prefix) return fail("has an IPv6 address without brackets or /prefix");
    rule.family = 6;
    nbytes = 16;
  } else {
    return fail(StrCat("has an invalid IP address \"", address, "\""));
  }

  uint32_t max_prefix = static_cast<uint32_t>(nbytes * 8);
  rule.prefix_len = static_cast<int>(max_prefix);
  if (has_prefix) {
    auto len = ParseDecimal(prefix, max_prefix);
    if (!len) {
      return fail(
          StrCat("has an invalid prefix length \"", prefix, "\" (allowed 0..", max_prefix, ")"));
    }
    rule.prefix_len = static_cast<int>(*len);
  }
  // Host bits set usually means a mistake (a host meant, a network written), so refuse
  // rather than silently widen or narrow the rule.
  for (size_t bit = static_cast<size_t>(rule.prefix_len); bit < max_prefix; ++bit) {
    if (bytes[bit / 8] & (0x80u >> (bit % 8))) {
      return fail(StrCat("has host bits set beyond /", rule.prefix_len));
    }
  }
  if (has_port) {
    auto port_number = ParseDecimal(port, 65535);
    if (!port_number) {
      return fail(StrCat("has an invalid port \"", port, "\" (allowed 0..65535, or none)"));
    }
    rule.port = static_cast<uint16_t>(*port_number);
  }

  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(rule.family == 4 ? AF_INET : AF_INET6, bytes.data(), out, sizeof(out));
  rule.address = out;
  rule.text = rule.family == 4 ? StrCat(rule.address, "/", rule.prefix_len, ":", rule.port)
                               : StrCat("[", rule.address, "]/", rule.prefix_len, ":", rule.port);
  return rule;
}

}  // namespace rauha::policy
