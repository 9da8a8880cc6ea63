// What nftables tells rauhad about a packet one of a zone's chains dropped: the log prefix
// the rule carries ("rauha/<kind>/<zone id8>") and the first bytes of the packet (its IPv4
// header and ports), as NFLOG delivers them. Pure: no sockets, so it is unit-tested and fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rauha::net {

// Which rule dropped it: the zone's egress (allowed_egress), another zone the sender's
// allowed_zones does not name, or the zone's ingress (allowed_ingress).
enum class DropKind { kEgress, kZoneToZone, kIngress };

struct DroppedPacket {
  DropKind kind = DropKind::kEgress;
  std::string zone_short_id;  // the zone whose chain dropped it (ShortId of its id)
  std::string source;         // dotted quad
  std::string destination;
  std::string protocol;  // "tcp", "udp", "icmp" or the protocol number
  uint16_t source_port = 0;
  uint16_t destination_port = 0;  // 0 where the protocol has none
};

// The log prefix of a zone chain's drop rule.
std::string DropPrefix(DropKind kind, const std::string& zone_short_id);
const char* DropKindName(DropKind kind);  // "egress", "zone", "ingress"

// nullopt when the prefix is not one of ours or the payload is not an IPv4 packet.
std::optional<DroppedPacket> ParseDroppedPacket(std::string_view prefix, std::string_view payload);

// "10.1.2.3:80/tcp", "10.1.2.3/icmp".
std::string DestinationText(const DroppedPacket& p);

}  // namespace rauha::net
