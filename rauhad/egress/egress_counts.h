// What the egress proxy counts for a zone over the zone's life: the part of its stats that
// rauhad keeps across restarts (egress_counters.h) and the store records.
#pragma once

#include <cstdint>

namespace rauha::egress {

struct EgressCounts {
  uint64_t connections = 0;  // accepted, all time
  uint64_t refused = 0;
  uint64_t bytes_out = 0;         // zone to upstream
  uint64_t bytes_in = 0;          // upstream to zone
  uint64_t secrets_injected = 0;  // headers that got a secret
  uint64_t secret_misuses = 0;    // placeholders left in place (events)
  uint64_t tls_terminated = 0;    // CONNECTs ended here for a secret's host
  uint64_t budget_closed = 0;     // connections closed because the budget was spent

  bool operator==(const EgressCounts&) const = default;
};

}  // namespace rauha::egress
