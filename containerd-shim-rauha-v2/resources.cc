#include "containerd-shim-rauha-v2/resources.h"

#include "nlohmann/json.hpp"
#include "rauha-common/policy/policy.h"

namespace rauha::cshim {
namespace {

absl::Status Bad(const std::string& field, const char* want) {
  return absl::InvalidArgumentError("update: resources." + field + " must be " + want);
}

// A signed JSON integer at `object[key]` (absent or null: nullopt).
absl::StatusOr<std::optional<int64_t>> Signed(const nlohmann::json& object, const char* key,
                                              const std::string& field) {
  if (!object.contains(key) || object[key].is_null()) return std::optional<int64_t>();
  if (!object[key].is_number_integer()) return Bad(field, "an integer");
  return std::optional<int64_t>(object[key].get<int64_t>());
}

}  // namespace

absl::StatusOr<ResourceUpdate> ParseLinuxResources(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("update: resources are not a JSON object");
  ResourceUpdate u;
  if (j.contains("memory") && !j["memory"].is_null()) {
    if (!j["memory"].is_object()) return Bad("memory", "an object");
    auto limit = Signed(j["memory"], "limit", "memory.limit");
    if (!limit.ok()) return limit.status();
    if (*limit) {
      if (**limit < -1 || **limit == 0) return Bad("memory.limit", "positive bytes, or -1 (none)");
      u.memory_limit_bytes = **limit;
    }
  }
  if (j.contains("cpu") && !j["cpu"].is_null()) {
    const auto& cpu = j["cpu"];
    if (!cpu.is_object()) return Bad("cpu", "an object");
    auto shares = Signed(cpu, "shares", "cpu.shares");
    if (!shares.ok()) return shares.status();
    if (*shares && **shares != 0) {
      if (**shares < 2 || **shares > 262144) return Bad("cpu.shares", "2..262144");
      u.cpu_shares = static_cast<uint64_t>(**shares);
    }
    auto quota = Signed(cpu, "quota", "cpu.quota");
    if (!quota.ok()) return quota.status();
    if (*quota && **quota != 0) {
      if (**quota < 0) {
        u.cpu_quota_us = kLift;
      } else if (**quota < 1000) {
        return Bad("cpu.quota", "at least 1000 microseconds, or -1 (none)");
      } else {
        u.cpu_quota_us = **quota;
      }
    }
    auto period = Signed(cpu, "period", "cpu.period");
    if (!period.ok()) return period.status();
    if (*period && **period != 0) {
      if (**period < 1000 || **period > 1000000) return Bad("cpu.period", "1000..1000000");
      u.cpu_period_us = static_cast<uint64_t>(**period);
    }
  }
  if (j.contains("pids") && !j["pids"].is_null()) {
    if (!j["pids"].is_object()) return Bad("pids", "an object");
    auto limit = Signed(j["pids"], "limit", "pids.limit");
    if (!limit.ok()) return limit.status();
    // OCI: 0 or -1 is no limit.
    if (*limit) u.pids_limit = **limit > 0 ? **limit : kLift;
  }
  return u;
}

absl::StatusOr<std::string> ApplyToPolicy(const std::string& policy_toml,
                                          const ResourceUpdate& update) {
  auto parsed = policy::ParsePolicy(policy_toml, "the zone's policy");
  if (!parsed.ok()) return parsed.status();
  policy::Policy p = *std::move(parsed);
  auto& r = p.resources;
  if (update.memory_limit_bytes) {
    if (*update.memory_limit_bytes == kLift) {
      r.memory_limit_bytes.reset();
      r.memory_limit_text = "max";
    } else {
      r.memory_limit_bytes = static_cast<uint64_t>(*update.memory_limit_bytes);
      r.memory_limit_text.clear();  // written as bytes
    }
  }
  if (update.cpu_shares) r.cpu_shares = *update.cpu_shares;
  if (update.cpu_quota_us) {
    if (*update.cpu_quota_us == kLift) {
      r.cpu_quota_us.reset();
    } else {
      r.cpu_quota_us = static_cast<uint64_t>(*update.cpu_quota_us);
    }
  }
  if (update.cpu_period_us) r.cpu_period_us = *update.cpu_period_us;
  if (update.pids_limit) {
    if (*update.pids_limit == kLift) {
      r.pids_max.reset();
    } else {
      r.pids_max = static_cast<uint64_t>(*update.pids_limit);
    }
  }
  std::string text = policy::ToCanonicalToml(p);
  // Checked as rauhad will check it: a value out of the policy's ranges is refused here, with
  // the key named, and nothing is applied.
  if (auto again = policy::ParsePolicy(text, "the updated policy"); !again.ok()) {
    return absl::InvalidArgumentError(std::string(again.status().message()));
  }
  return text;
}

}  // namespace rauha::cshim
