// The values of `rauha sandbox` flags that need more than CLI11's checks, as pure functions.
// An InvalidArgument naming the flag is a usage error (exit 2) to the command.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cli {

inline constexpr uint64_t kMaxOutputLimit = 1u << 20;  // rauhad's ceiling, per stream
inline constexpr size_t kMaxStdinBytes = 1u << 20;     // rauhad's bound: stdin is in the request

// "--timeout 0.5" -> 500 (ms): seconds from 0 to 4294967295 (what the API's uint32 seconds
// can say), fractions allowed; a value above 0 is at least 1 ms.
absl::StatusOr<uint64_t> ParseSeconds(std::string_view flag, const std::string& text);

// --user: "1000", "1000:100" or a user name of this host (its uid and primary group), into
// the request's uid and gid. 4294967295 is refused (the kernel's "no change").
absl::Status ParseUser(const std::string& text, rauha::sandbox::v1::RunSandboxRequest& req);

// --output-limit: a size ("4096", "64Ki", "1Mi") from 1 to kMaxOutputLimit.
absl::StatusOr<uint64_t> ParseOutputLimit(const std::string& text);

// Everything readable from `fd` up to EOF; FailedPrecondition past kMaxStdinBytes.
absl::StatusOr<std::string> ReadStdin(int fd);

// The usage error of a `rauha sandbox` command line with options CLI11 does not know
// (`unknown`, in the order given, not empty). `args`: the line's words before "--";
// `command`: the CMD words CLI11 took from them. An unknown option before the command is one
// of rauha's misspelt (e.g. --zone: the zone is --name), one after it the command's own flag,
// which belongs after --. `error` is for "rauha: ", `hint` the line after it.
struct UsageError {
  std::string error;
  std::string hint;
};
UsageError UnknownSandboxOptions(const std::vector<std::string>& args,
                                 const std::vector<std::string>& unknown,
                                 const std::vector<std::string>& command);

// A command both before and after "--" (`rauha sandbox stray -- true`): the usage error
// naming the first word before it, or "" when the command is on one side only.
std::string CommandOnBothSidesOfDashes(const std::vector<std::string>& before,
                                       const std::vector<std::string>& after);

}  // namespace rauha::cli
