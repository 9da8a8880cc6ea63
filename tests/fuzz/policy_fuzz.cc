// libFuzzer target: any bytes as a policy. ParsePolicy must not crash, every error must be
// "fuzz.toml:<line>:<column>: ...", and an accepted policy must survive the canonical round
// trip unchanged. Seed corpus: policies/, tests/unit/policy_fixtures/ and
// tests/fuzz/policy_corpus/ (deep keys, arrays and inline tables that overflowed toml++'s stack).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"
#include "tests/policy_error_location.h"

namespace {

[[noreturn]] void Fail(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "%.*s\n%.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rauha::policy;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParsePolicy(text, "fuzz.toml");
  if (!parsed.ok()) {
    std::string message = rauha::ToStd(parsed.status().message());
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument)
      Fail("not InvalidArgument", message);
    if (!rauha::testing::HasPolicyErrorLocation(message, "fuzz.toml"))
      Fail("error without source:line:column", message);
    return 0;
  }
  std::string canonical = ToCanonicalToml(*parsed);
  auto again = ParsePolicy(canonical, "canonical");
  if (!again.ok()) Fail("canonical output does not parse", rauha::ToStd(again.status().message()));
  if (ToCanonicalToml(*again) != canonical)
    Fail("canonical output is not a fixed point", canonical);
  if (again->resources.memory_limit_bytes != parsed->resources.memory_limit_bytes) {
    Fail("memory limit changed in the round trip", canonical);
  }
  return 0;
}
