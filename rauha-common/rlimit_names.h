#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>

namespace rauha {

// The OCI runtime spec's rlimit names (process.rlimits[].type) and their resources; the one
// table for rauhad (CRI specs) and the shim (task plans).
inline std::optional<int> RlimitResource(std::string_view name) {
  struct Entry {
    std::string_view name;
    int resource;
  };
  static constexpr Entry kRlimits[] = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  auto it = std::find_if(std::begin(kRlimits), std::end(kRlimits),
                         [&](const Entry& e) { return e.name == name; });
  if (it == std::end(kRlimits)) return std::nullopt;
  return it->resource;
}

}  // namespace rauha
