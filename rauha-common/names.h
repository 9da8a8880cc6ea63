// Zone name rules of the public API: non-empty, at most 128 bytes, and none of ".", "..",
// "/", "\" or NUL (names never become paths, but clients rely on the refusal), and no control
// character (C0, DEL, C1: a name must not forge rows of a listing or drive a terminal).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace rauha {

inline constexpr size_t kMaxZoneNameBytes = 128;

// OK, or InvalidArgument saying what is wrong and what is allowed.
absl::Status ValidateZoneName(std::string_view name);

inline constexpr size_t kMaxSecretNameBytes = 64;

// A stored secret's name, which is also the environment variable of its placeholder in tasks:
// 1 to 64 of A-Z, a-z, 0-9 and '_', not starting with a digit, and none of the variables rauhad
// sets itself (PATH, HOME, LANG, RAUHA_*, the proxy and CA bundle variables). InvalidArgument
// saying what is wrong and what is allowed.
absl::Status ValidateSecretName(std::string_view name);

// The first control character of `text` (C0 U+0000..U+001F, DEL U+007F, or C1 U+0080..U+009F
// in its UTF-8 form) as "U+001B at byte 3", or "" when there is none.
std::string FindControlCharacter(std::string_view text);

// InvalidArgument naming `field` when `text` holds a control character (FindControlCharacter).
absl::Status RefuseControlCharacters(std::string_view field, std::string_view text);

}  // namespace rauha
