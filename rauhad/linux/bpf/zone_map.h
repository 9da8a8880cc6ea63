// ZoneRules -> the fixed-layout map value the BPF programs read (ebpf/rauha_bpf.h). Pure:
// unit-tested without a kernel.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "ebpf/rauha_bpf.h"
#include "rauhad/linux/bpf/enforcer.h"

namespace rauha::bpf {

// InvalidArgument, naming the zone and the field, when a list exceeds the map's room
// (RAUHA_MAX_NET_RULES egress/ingress rules, RAUHA_MAX_PEERS peers, RAUHA_MAX_DEVICES devices,
// RAUHA_MAX_PREFIXES paths per list), a path is not absolute or longer than
// RAUHA_PREFIX_LEN - 1 bytes, or an address does not parse. Paths lose trailing slashes ("/"
// stays "/"). Heap-allocated: the value is several KiB.
absl::StatusOr<std::unique_ptr<rauha_zone>> CompileZone(const ZoneRules& rules);

}  // namespace rauha::bpf
