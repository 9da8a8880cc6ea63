#include "rauhad/net/dns_hint.h"

#include <array>

namespace rauha::net {
namespace {

// What resolvers and the tools above them print (glibc gai_strerror, curl, git, Node, Go).
constexpr std::array<std::string_view, 7> kLookupFailures = {
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "Could not resolve host",
    "getaddrinfo EAI_AGAIN",
    "getaddrinfo ENOTFOUND",
    "server misbehaving",
};

bool ShowsLookupFailure(std::string_view text) {
  for (auto m : kLookupFailures) {
    if (text.find(m) != std::string_view::npos) return true;
  }
  return false;
}

bool DeniedDns(const EnforcementEvent& e) {
  const std::string& o = e.object;
  return e.decision == "deny" && (o.find(":53/") != std::string::npos ||
                                  (o.size() >= 3 && o.compare(o.size() - 3, 3, ":53") == 0));
}

}  // namespace

bool ZoneHasNoDns(const policy::Policy::Network& network) {
  if (network.mode == policy::NetworkMode::kHost) return false;
  if (network.mode == policy::NetworkMode::kIsolated) return true;
  for (const auto& r : network.allowed_egress) {
    if (r.port == 53 || r.port == 0) return false;
  }
  return true;
}

std::optional<std::string> DnsHint(const policy::Policy::Network& network,
                                   std::string_view stdout_data, std::string_view stderr_data,
                                   const std::vector<EnforcementEvent>& events) {
  if (!ZoneHasNoDns(network)) return std::nullopt;
  bool failed = ShowsLookupFailure(stderr_data) || ShowsLookupFailure(stdout_data);
  for (const auto& e : events) failed = failed || DeniedDns(e);
  if (!failed) return std::nullopt;
  // HTTP(S) clients need no DNS at all: the egress proxy resolves allowed names on the host.
  std::string proxy =
      network.allowed_hosts.empty()
          ? "for HTTP(S), list the names in [network] allowed_hosts = [\"pypi.org:443\", ...] "
            "(the egress proxy resolves them; tasks get HTTPS_PROXY); otherwise "
          : "the zone's allowed_hosts are reached through HTTPS_PROXY/HTTP_PROXY (a tool that "
            "ignores them resolves names itself and fails); for other protocols ";
  std::string how =
      network.mode == policy::NetworkMode::kIsolated
          ? "an isolated zone has loopback only: use [network] mode = \"bridged\" with "
            "allowed_egress for a resolver (\"RESOLVER_IP:53\") and the addresses the task needs"
          : "allow a resolver with [network] allowed_egress = [\"RESOLVER_IP:53\", ...] and the "
            "addresses the task needs";
  return "a name lookup failed: this zone has no DNS (no policy rule reaches a resolver); " +
         proxy + how;
}

}  // namespace rauha::net
