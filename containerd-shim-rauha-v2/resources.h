// containerd's Update: the OCI LinuxResources (JSON in the request's Any) Rauha can apply to a
// zone, and the zone policy with them applied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace rauha::cshim {

// What an Update asks for; nullopt leaves a control as it is. kLift removes a limit.
inline constexpr int64_t kLift = -1;
struct ResourceUpdate {
  std::optional<int64_t> memory_limit_bytes;  // or kLift
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota_us;  // or kLift
  std::optional<uint64_t> cpu_period_us;
  std::optional<int64_t> pids_limit;  // or kLift
};

// Parses LinuxResources JSON ({"memory": {"limit": N}, "cpu": {"shares", "quota", "period"},
// "pids": {"limit": N}}); other fields (cpuset, hugepages, blkio, devices ...) are ignored.
// InvalidArgument naming the field for a wrong type or a value out of range.
absl::StatusOr<ResourceUpdate> ParseLinuxResources(const std::string& json_text);

// The zone policy `policy_toml` with `update` applied, as canonical TOML; InvalidArgument when
// the result is not a valid policy (the message names the key).
absl::StatusOr<std::string> ApplyToPolicy(const std::string& policy_toml,
                                          const ResourceUpdate& update);

}  // namespace rauha::cshim
