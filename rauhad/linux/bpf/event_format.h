// Kernel events (struct rauha_event) -> rauha::EnforcementEvent: hook and layer names, the
// object and a human sentence. Pure: unit-tested without a kernel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ebpf/rauha_bpf.h"
#include "rauha-common/enforcement_event.h"

namespace rauha::bpf {

// "lsm/file_open", "cgroup/connect4", "landlock"; "unknown" beyond RAUHA_HOOK_COUNT.
std::string_view HookName(uint16_t hook);
// "lsm", "cgroup-bpf", "landlock".
std::string_view HookLayer(uint16_t hook);

// `zone_id` / `target_zone`: the zones of e.cgroup_id / e.target_cgroup_id ("" if none);
// `realtime_offset_ns`: CLOCK_REALTIME minus CLOCK_MONOTONIC now (e.ktime_ns is monotonic).
EnforcementEvent FormatEvent(const rauha_event& e, std::string zone_id, std::string target_zone,
                             int64_t realtime_offset_ns);

// "192.0.2.1:9", "[2001:db8::1]:443" from an event's family/addr/port.
std::string FormatSockAddr(uint16_t family, const uint32_t addr[4], uint16_t port);

}  // namespace rauha::bpf
