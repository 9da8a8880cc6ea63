// A packet nftables dropped, as the enforcement event rauhad publishes (layer "nftables"). Pure.
#pragma once

#include <cstdint>
#include <string>

#include "rauha-common/enforcement_event.h"
#include "rauhad/net/drop_packet.h"

namespace rauha::net {

// `zone_id`: the zone whose chain dropped it (the sender for egress and zone-to-zone, the
// receiver for ingress). `target_zone_id`/`target_zone_name`: the zone a zone-to-zone packet was
// for ("" otherwise).
EnforcementEvent DropEvent(const DroppedPacket& packet, const std::string& zone_id,
                           const std::string& target_zone_id, const std::string& target_zone_name,
                           int64_t time_ns);

}  // namespace rauha::net
