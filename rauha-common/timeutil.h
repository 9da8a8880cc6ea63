// RFC 3339 timestamps in UTC, as every API field that carries a time uses them.
#pragma once

#include <cstdint>
#include <string>

namespace rauha {

// "2026-11-22T16:01:26.123456789Z" from nanoseconds since the epoch (CLOCK_REALTIME).
std::string Rfc3339FromNanos(int64_t unix_nanos);
std::string NowRfc3339();
int64_t NowUnixNanos();
// The inverse of Rfc3339FromNanos (its form only: UTC, "Z", 9 fraction digits or none); -1 for
// anything else.
int64_t NanosFromRfc3339(const std::string& text);

}  // namespace rauha
