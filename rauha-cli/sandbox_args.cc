#include "rauha-cli/sandbox_args.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::cli {
namespace {

constexpr double kMaxSeconds = 4294967295.0;  // what the API's uint32 seconds can say

// Options other commands (or docker run) have that sandbox spells otherwise.
struct Respelling {
  std::string_view given;
  std::string_view says;
};
constexpr Respelling kRespellings[] = {
    {"--zone", "the zone to run in is --name ZONE"},
    {"-w", "the working directory is --workdir DIR"},
    {"-u", "the user is --user UID[:GID]"},
    {"-v", "the host directory is --repo-path DIR (mounted at /workspace)"},
    {"--volume", "the host directory is --repo-path DIR (mounted at /workspace)"},
};

}  // namespace

UsageError UnknownSandboxOptions(const std::vector<std::string>& args,
                                 const std::vector<std::string>& unknown,
                                 const std::vector<std::string>& command) {
  size_t start = 0;
  while (start < args.size() && args[start] != "sandbox") ++start;
  auto position = [&](const std::string& word) {
    size_t i = start + 1;
    while (i < args.size() && args[i] != word) ++i;
    return i;
  };
  const std::string& first = unknown.front();
  if (!command.empty() && position(command.front()) < position(first)) {
    return {rauha::StrCat("sandbox: ", first, " follows the command ", command.front(),
                          " and is not an option of rauha sandbox"),
            "Put the command after --: rauha sandbox [OPTIONS] -- CMD ARGS..."};
  }
  std::string error = rauha::StrCat("sandbox: unknown option ", first);
  const std::string_view name = std::string_view(first).substr(0, first.find('='));
  for (const Respelling& r : kRespellings) {
    if (name == r.given) error = rauha::StrCat(error, "; ", r.says);
  }
  return {error, "Run 'rauha sandbox --help' for its options."};
}

std::string CommandOnBothSidesOfDashes(const std::vector<std::string>& before,
                                       const std::vector<std::string>& after) {
  if (before.empty() || after.empty()) return "";
  return rauha::StrCat("sandbox: unexpected argument '", before.front(),
                       "' before --: put the whole command after -- (rauha sandbox [OPTIONS] -- ",
                       "CMD ARGS...)");
}

absl::StatusOr<uint64_t> ParseSeconds(std::string_view flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  double s = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || errno == ERANGE || !std::isfinite(s) ||
      s < 0 || s > kMaxSeconds || text.find_first_of("xXpP") != std::string::npos) {
    return absl::InvalidArgumentError(
        rauha::StrCat(flag, " ", text, ": expected seconds from 0 to ",
                      static_cast<uint64_t>(kMaxSeconds), ", fractions allowed (e.g. 0.5)"));
  }
  return static_cast<uint64_t>(std::ceil(s * 1000));
}

absl::Status ParseUser(const std::string& text, rauha::sandbox::v1::RunSandboxRequest& req) {
  auto number = [](std::string_view s, uint32_t* out) {
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    uint64_t v = std::stoull(std::string(s));
    if (v >= UINT32_MAX) return false;  // (uid_t)-1 is "no change" to the kernel
    *out = static_cast<uint32_t>(v);
    return true;
  };
  size_t colon = text.find(':');
  std::string_view uid_part = std::string_view(text).substr(0, colon);
  uint32_t uid = 0, gid = 0;
  if (number(uid_part, &uid)) {
    req.set_uid(uid);
  } else if (colon == std::string::npos && !text.empty()) {
    const passwd* pw = ::getpwnam(text.c_str());
    if (pw == nullptr) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--user ", text, ": no such user on this host; give UID[:GID] numbers"));
    }
    req.set_uid(pw->pw_uid);
    req.set_gid(pw->pw_gid);
    return absl::OkStatus();
  } else {
    return absl::InvalidArgumentError(rauha::StrCat(
        "--user ", text, ": expected UID[:GID] (numbers below 4294967295) or a user name"));
  }
  if (colon != std::string::npos) {
    if (!number(std::string_view(text).substr(colon + 1), &gid)) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--user ", text, ": the GID after ':' must be a number below 4294967295"));
    }
    req.set_gid(gid);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadStdin(int fd) {
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(rauha::StrCat("reading stdin: ", std::strerror(errno)));
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxStdinBytes) {
      return absl::FailedPreconditionError(
          rauha::StrCat("-i: stdin holds more than ", kMaxStdinBytes,
                        " bytes, the most a task can be given; put larger input in --repo-path"));
    }
  }
}

absl::StatusOr<uint64_t> ParseOutputLimit(const std::string& text) {
  auto bytes = rauha::policy::ParseMemorySize(text);
  if (!bytes.ok() || *bytes < 1 || *bytes > kMaxOutputLimit) {
    return absl::InvalidArgumentError(rauha::StrCat(
        "--output-limit ", text, ": expected 1 to ", kMaxOutputLimit, " bytes (1Mi) per stream",
        bytes.ok() ? "" : rauha::StrCat(" (", rauha::ToStd(bytes.status().message()), ")")));
  }
  return *bytes;
}

}  // namespace rauha::cli
