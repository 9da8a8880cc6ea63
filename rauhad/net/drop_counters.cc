#include "rauhad/net/drop_counters.h"

#include "nlohmann/json.hpp"
#include "rauha-common/strcat.h"

namespace rauha::net {

std::string DropCounterName(DropKind kind, const std::string& zone_short_id) {
  const char* prefix = kind == DropKind::kEgress       ? "de_"
                       : kind == DropKind::kZoneToZone ? "dz_"
                                                       : "di_";
  return StrCat(prefix, zone_short_id);
}

absl::StatusOr<std::map<std::string, DropCounts>> ParseDropCounters(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("nftables") ||
      !doc["nftables"].is_array()) {
    return absl::InvalidArgumentError("nftables' counter listing is not the JSON expected");
  }
  std::map<std::string, DropCounts> out;
  for (const auto& item : doc["nftables"]) {
    if (!item.is_object() || !item.contains("counter")) continue;
    const auto& c = item["counter"];
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
    std::string name = c["name"].get<std::string>();
    uint64_t packets = 0;
    if (c.contains("packets") && c["packets"].is_number_unsigned()) {
      packets = c["packets"].get<uint64_t>();
    }
    if (name.size() < 4 || name[0] != 'd' || name[2] != '_') continue;
    const char kind = name[1];
    if (kind != 'e' && kind != 'z' && kind != 'i') continue;
    DropCounts& counts = out[name.substr(3)];
    (kind == 'e' ? counts.egress : kind == 'z' ? counts.zone : counts.ingress) = packets;
  }
  return out;
}

}  // namespace rauha::net
