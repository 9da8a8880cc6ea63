// UTF-8 for task output: proto3 `string` fields (and JSON) must hold valid UTF-8, while a task
// may write any bytes. These give the valid-UTF-8 rendering those fields carry; the exact bytes
// travel beside it (bytes fields, base64).
#pragma once

#include <string>
#include <string_view>

namespace rauha {

// Valid UTF-8 per RFC 3629 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` with each maximal invalid subsequence replaced by U+FFFD (as the Unicode standard and
// browsers do); `s` itself when valid.
std::string ToValidUtf8(std::string_view s);

// The length of `s` without a trailing sequence that is incomplete but could still be valid
// (a head of output cut at a byte limit may end in the middle of a character).
size_t WithoutIncompleteTail(std::string_view s);

}  // namespace rauha
