#include "rauha-common/enforcement_event.h"

#include "rauha-common/strcat.h"

namespace rauha {

nlohmann::json ToJson(const EnforcementEvent& e) {
  return nlohmann::json{
      {"time_ns", e.time_ns},     {"zone_id", e.zone_id}, {"cgroup_id", e.cgroup_id},
      {"pidns_ino", e.pidns_ino}, {"pid", e.pid},         {"comm", e.comm},
      {"layer", e.layer},         {"hook", e.hook},       {"action", e.action},
      {"decision", e.decision},   {"object", e.object},   {"target_zone", e.target_zone},
      {"message", e.message}};
}

namespace {

template <typename T>
absl::Status Read(const nlohmann::json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string())
      return absl::InvalidArgumentError(StrCat("enforcement event: ", key, " must be a string"));
  } else {
    if (!it->is_number_integer())
      return absl::InvalidArgumentError(StrCat("enforcement event: ", key, " must be an integer"));
    if constexpr (std::is_unsigned_v<T>) {
      if (it->is_number_integer() && !it->is_number_unsigned() && it->template get<int64_t>() < 0)
        return absl::InvalidArgumentError(
            StrCat("enforcement event: ", key, " must not be negative"));
    }
  }
  *out = it->template get<T>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EnforcementEvent> EnforcementEventFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("enforcement event must be an object");
  EnforcementEvent e;
  for (auto st : {Read(j, "time_ns", &e.time_ns), Read(j, "zone_id", &e.zone_id),
                  Read(j, "cgroup_id", &e.cgroup_id), Read(j, "pidns_ino", &e.pidns_ino),
                  Read(j, "pid", &e.pid), Read(j, "comm", &e.comm), Read(j, "layer", &e.layer),
                  Read(j, "hook", &e.hook), Read(j, "action", &e.action),
                  Read(j, "decision", &e.decision), Read(j, "object", &e.object),
                  Read(j, "target_zone", &e.target_zone), Read(j, "message", &e.message)}) {
    if (!st.ok()) return st;
  }
  return e;
}

}  // namespace rauha
