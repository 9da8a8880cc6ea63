// Every packet a zone's nftables chains drop, counted in the kernel: the drop events are
// rate-limited (firewall.h), the counters are not. Each zone chain's drop rules (the logged one
// and the unlogged one past the rate) update one named counter per kind of drop,
// "<prefix>_<zone id8>" (DropCounterName). Pure: this reads libnftables' listing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rauhad/net/drop_packet.h"

namespace rauha::net {

struct DropCounts {
  uint64_t egress = 0;   // not in allowed_egress
  uint64_t zone = 0;     // to another zone allowed_zones does not name
  uint64_t ingress = 0;  // not in allowed_ingress
};

// "de_1a2b3c4d", "dz_1a2b3c4d", "di_1a2b3c4d".
std::string DropCounterName(DropKind kind, const std::string& zone_short_id);

// The packet counts of every zone's drop counters of table inet `table` in `text` (libnftables'
// output of "list counters": "table inet T {", "counter NAME {", "packets N bytes M"), by zone
// short id. InvalidArgument on a count that is not a number.
absl::StatusOr<std::map<std::string, DropCounts>> ParseDropCounters(std::string_view text,
                                                                    std::string_view table);

}  // namespace rauha::net
