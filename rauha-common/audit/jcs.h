// RFC 8785 JSON Canonicalization Scheme for the values audit records use: strings, integers,
// booleans, null, arrays and objects. Floats are refused (their ECMAScript rendering is the
// one hard part of JCS, and no record needs them), as are integers outside ±(2^53 - 1), which
// ECMAScript cannot represent exactly.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rauha::audit {

// The canonical UTF-8 text of `value`: object members sorted by the UTF-16 code units of
// their names, no whitespace, strings escaped as ECMAScript's JSON.stringify does.
// InvalidArgument for floats, out-of-range integers and strings that are not UTF-8.
absl::StatusOr<std::string> Canonicalize(const nlohmann::json& value);

// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD, for free text that
// goes into a record (process names, paths): records are UTF-8 only.
std::string ToValidUtf8(std::string_view text);

// Parses `text` as JSON and requires it to be exactly its own canonical form (so duplicate
// members, whitespace, escapes that JCS would not write, and floats are all refused).
absl::StatusOr<nlohmann::json> ParseCanonical(const std::string& text);

}  // namespace rauha::audit
