// A hint for a task whose name lookups failed because its zone has no DNS: the resolver's
// "Temporary failure in name resolution" says nothing about policy. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rauha-common/enforcement_event.h"
#include "rauha-common/policy/policy.h"

namespace rauha::net {

// True when nothing in `network` lets a task reach a resolver on port 53 (host networking
// uses the host's).
bool ZoneHasNoDns(const policy::Policy::Network& network);

// The hint, when the zone has no DNS and the task's output shows a failed lookup or a denied
// packet to port 53 is among its events; nullopt otherwise.
std::optional<std::string> DnsHint(const policy::Policy::Network& network,
                                   std::string_view stdout_data, std::string_view stderr_data,
                                   const std::vector<EnforcementEvent>& events);

}  // namespace rauha::net
