#include "rauhad/net/drop_packet.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "rauha-common/strcat.h"

namespace rauha::net {
namespace {

constexpr std::string_view kPrefixHead = "rauha/";

std::string Quad(const unsigned char* p) {
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, p, buf, sizeof(buf));
  return buf;
}

}  // namespace

const char* DropKindName(DropKind kind) {
  switch (kind) {
    case DropKind::kEgress:
      return "egress";
    case DropKind::kZoneToZone:
      return "zone";
    case DropKind::kIngress:
      return "ingress";
  }
  return "egress";
}

std::string DropPrefix(DropKind kind, const std::string& zone_short_id) {
  return StrCat(kPrefixHead, DropKindName(kind), "/", zone_short_id);
}

std::optional<DroppedPacket> ParseDroppedPacket(std::string_view prefix, std::string_view payload) {
  if (prefix.substr(0, kPrefixHead.size()) != kPrefixHead) return std::nullopt;
  prefix.remove_prefix(kPrefixHead.size());
  size_t slash = prefix.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view kind = prefix.substr(0, slash), id = prefix.substr(slash + 1);
  DroppedPacket p;
  if (kind == "egress") {
    p.kind = DropKind::kEgress;
  } else if (kind == "zone") {
    p.kind = DropKind::kZoneToZone;
  } else if (kind == "ingress") {
    p.kind = DropKind::kIngress;
  } else {
    return std::nullopt;
  }
  if (id.empty() || id.size() > 8 || id.find_first_not_of("0123456789abcdefABCDEF") != id.npos)
    return std::nullopt;
  p.zone_short_id = std::string(id);

  const auto* b = reinterpret_cast<const unsigned char*>(payload.data());
  if (payload.size() < 20 || (b[0] >> 4) != 4) return std::nullopt;
  size_t ihl = static_cast<size_t>(b[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > payload.size()) return std::nullopt;
  p.source = Quad(b + 12);
  p.destination = Quad(b + 16);
  uint8_t proto = b[9];
  // Ports only in the first fragment: later ones carry no transport header.
  bool first_fragment = ((b[6] & 0x1f) | b[7]) == 0;
  switch (proto) {
    case IPPROTO_TCP:
      p.protocol = "tcp";
      break;
    case IPPROTO_UDP:
      p.protocol = "udp";
      break;
    case IPPROTO_ICMP:
      p.protocol = "icmp";
      break;
    default:
      p.protocol = std::to_string(proto);
  }
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && first_fragment &&
      payload.size() >= ihl + 4) {
    p.source_port = static_cast<uint16_t>(b[ihl] << 8 | b[ihl + 1]);
    p.destination_port = static_cast<uint16_t>(b[ihl + 2] << 8 | b[ihl + 3]);
  }
  return p;
}

std::string DestinationText(const DroppedPacket& p) {
  if (p.destination_port == 0) return StrCat(p.destination, "/", p.protocol);
  return StrCat(p.destination, ":", p.destination_port, "/", p.protocol);
}

}  // namespace rauha::net
