// What toml++ 3.3 cannot be trusted with, refused before it sees a policy's text.
//
// toml++ builds one table per part of a dotted key ("a.b.c = 1", "[a.b.c]") and walks the
// resulting tree recursively (update_region_ends, destructors): a 300 KB key of 150 000 parts
// overflows the stack. Arrays and inline tables recurse too (up to its own limit of 256, about
// 1 KB of stack each), the code points listed below reach __builtin_unreachable() in its
// whitespace check, and parse time and memory grow with the input. A policy needs 2 key parts
// ([table] key), 1 level of arrays and a few kilobytes, so the bounds here are far above any
// real policy and far below what hurts the parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rauha::policy::internal {

inline constexpr int kMaxKeyParts = 8;  // "a.b.c" has 3; "[t] k" needs 1 + 1
inline constexpr int kMaxNesting = 8;   // arrays and inline tables inside each other

struct PrescanError {
  uint32_t line;    // 1-based, as toml++ counts
  uint32_t column;  // 1-based, in code points, as toml++ counts
  std::string message;
};

// Scans `text` the way TOML separates comments and strings (basic, literal, multi-line of
// each) from the rest, and returns the first violation: longer than kMaxPolicyBytes, a key
// of more than kMaxKeyParts parts (counted on every run of parts joined by '.', so in
// table headers, in key/value lines and inside inline tables), brackets and braces nested
// deeper than kMaxNesting, or a code point toml++ 3.3 mishandles (U+00A1..U+0499,
// U+2C5E..U+3057, U+FB26..U+FEFE, anywhere, comments and strings included). Strings and
// comments end where TOML ends them (escapes, and up to two quotes before a multi-line
// string's closing three), so text that toml++ reads as keys is never skipped as a string;
// where the two could read a text differently toml++ stops with an error first. Everything
// outside strings and comments counts, so a float or a date adds a part too (harmlessly).
std::optional<PrescanError> Prescan(std::string_view text);

}  // namespace rauha::policy::internal
