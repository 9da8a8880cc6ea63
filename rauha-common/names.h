// Zone name rules of the public API: non-empty, at most 128 bytes, and none of ".", "..",
// "/", "\" or NUL (names never become paths, but clients rely on the refusal).
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace rauha {

inline constexpr size_t kMaxZoneNameBytes = 128;

// OK, or InvalidArgument saying what is wrong and what is allowed.
absl::Status ValidateZoneName(std::string_view name);

}  // namespace rauha
