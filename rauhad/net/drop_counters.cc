#include "rauhad/net/drop_counters.h"

#include <charconv>
#include <sstream>

#include "rauha-common/strcat.h"

namespace rauha::net {

std::string DropCounterName(DropKind kind, const std::string& zone_short_id) {
  const char* prefix = kind == DropKind::kEgress       ? "de_"
                       : kind == DropKind::kZoneToZone ? "dz_"
                                                       : "di_";
  return StrCat(prefix, zone_short_id);
}

absl::StatusOr<std::map<std::string, DropCounts>> ParseDropCounters(std::string_view text,
                                                                    std::string_view table) {
  std::map<std::string, DropCounts> out;
  std::istringstream in{std::string(text)};
  std::string line;
  bool in_table = false;
  std::string counter;  // the counter whose block this is, "" outside one
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first, second, third;
    words >> first >> second >> third;
    if (first == "table") {
      in_table = second == "inet" && third == table;
      counter.clear();
    } else if (first == "counter" && in_table) {
      counter = second;
    } else if (first == "packets" && in_table && !counter.empty()) {
      uint64_t packets = 0;
      auto [end, ec] = std::from_chars(second.data(), second.data() + second.size(), packets);
      if (ec != std::errc() || end != second.data() + second.size()) {
        return absl::InvalidArgumentError(
            StrCat("nftables' counter listing has \"", line, "\" for counter ", counter));
      }
      const std::string& name = counter;
      if (name.size() >= 4 && name[0] == 'd' && name[2] == '_' &&
          (name[1] == 'e' || name[1] == 'z' || name[1] == 'i')) {
        DropCounts& counts = out[name.substr(3)];
        (name[1] == 'e' ? counts.egress : name[1] == 'z' ? counts.zone : counts.ingress) = packets;
      }
      counter.clear();
    }
  }
  return out;
}

}  // namespace rauha::net
