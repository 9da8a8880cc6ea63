#include "rauhad/net/drop_event.h"

#include "rauha-common/strcat.h"

namespace rauha::net {

EnforcementEvent DropEvent(const DroppedPacket& p, const std::string& zone_id,
                           const std::string& target_zone_id, const std::string& target_zone_name,
                           int64_t time_ns) {
  EnforcementEvent e;
  e.time_ns = time_ns;
  e.zone_id = zone_id;
  e.layer = "nftables";
  e.hook = StrCat("nftables/", DropKindName(p.kind));
  e.decision = "deny";
  e.target_zone = target_zone_id;
  std::string what = StrCat(p.protocol, " from ", p.source, " to ", DestinationText(p));
  e.object = StrCat(p.source, " -> ", DestinationText(p));
  switch (p.kind) {
    case DropKind::kEgress:
      e.action = p.protocol == "tcp" ? "connect" : "sendmsg";
      e.message = StrCat("nftables dropped ", what, ": not in the zone's allowed_egress");
      break;
    case DropKind::kZoneToZone:
      e.action = p.protocol == "tcp" ? "connect" : "sendmsg";
      e.message = StrCat(
          "nftables dropped ", what, ": the zone's allowed_zones does not name ",
          target_zone_name.empty() ? std::string("that zone") : StrCat("zone ", target_zone_name));
      break;
    case DropKind::kIngress:
      e.action = "ingress";
      e.message = StrCat("nftables dropped ", what, ": not in the zone's allowed_ingress");
      break;
  }
  return e;
}

}  // namespace rauha::net
