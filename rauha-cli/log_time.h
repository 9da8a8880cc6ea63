// The times `rauha logs --since/--until` accept, as docker's do: an RFC 3339 time ("Z" or a
// numeric offset, any number of fraction digits), a date alone (midnight UTC), Unix seconds
// ("1732982400", "1732982400.5"), or a duration before now ("10m", "1h30m", "2.5s", "500ms").
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rauha::cli {

// Nanoseconds since the epoch; `now_ns` anchors durations.
absl::StatusOr<int64_t> ParseLogTime(const std::string& text, int64_t now_ns);

}  // namespace rauha::cli
