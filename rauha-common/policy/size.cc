#include <cstdint>
#include <limits>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

constexpr std::string_view kSizeRule =
    "write a positive number of bytes, optionally followed by K, M, G, T, P (powers of 1000) "
    "or Ki, Mi, Gi, Ti, Pi (powers of 1024), e.g. \"4Gi\" or \"512Mi\"";

struct Suffix {
  std::string_view text;
  uint64_t multiplier;
};

constexpr Suffix kSuffixes[] = {
    {"", 1},
    {"K", 1000ull},
    {"M", 1000ull * 1000},
    {"G", 1000ull * 1000 * 1000},
    {"T", 1000ull * 1000 * 1000 * 1000},
    {"P", 1000ull * 1000 * 1000 * 1000 * 1000},
    {"Ki", 1ull << 10},
    {"Mi", 1ull << 20},
    {"Gi", 1ull << 30},
    {"Ti", 1ull << 40},
    {"Pi", 1ull << 50},
};

}  // namespace

absl::StatusOr<uint64_t> ParseMemorySize(std::string_view text) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat("memory size \"", text, "\" ", what, "; ", kSizeRule));
  };
  if (text.empty()) return fail("is empty");
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (text[0] == '-') return fail("is negative");
  if (digits == 0) return fail("does not start with a digit");
  std::string_view suffix = text.substr(digits);
  uint64_t multiplier = 0;
  for (const Suffix& s : kSuffixes) {
    if (s.text == suffix) multiplier = s.multiplier;
  }
  if (multiplier == 0) return fail(StrCat("has an unknown suffix \"", suffix, "\""));

  // cgroup limits are signed 64-bit in the kernel, so that is the largest size we accept.
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t number = 0;
  for (char c : text.substr(0, digits)) {
    if (__builtin_mul_overflow(number, 10u, &number) ||
        __builtin_add_overflow(number, static_cast<uint64_t>(c - '0'), &number)) {
      return fail("is too large (the limit is 2^63-1 bytes)");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(number, multiplier, &bytes) || bytes > kMax) {
    return fail("is too large (the limit is 2^63-1 bytes)");
  }
  if (bytes == 0) return fail("is zero");
  return bytes;
}

}  // namespace rauha::policy
