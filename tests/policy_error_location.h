// Shared by the policy unit tests and the policy fuzzer: every policy error must start with
// "<source>:<line>:<column>: " (positive line and column) and say something after it.
#pragma once

#include <string_view>

namespace rauha::testing {

inline bool HasPolicyErrorLocation(std::string_view message, std::string_view source) {
  if (message.substr(0, source.size()) != source) return false;
  std::string_view rest = message.substr(source.size());
  for (int field = 0; field < 2; ++field) {
    if (rest.empty() || rest[0] != ':') return false;
    rest.remove_prefix(1);
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || rest[0] == '0') return false;
    rest.remove_prefix(digits);
  }
  return rest.size() > 2 && rest.substr(0, 2) == ": ";
}

}  // namespace rauha::testing
