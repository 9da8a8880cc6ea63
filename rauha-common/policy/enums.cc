#include "rauha-common/policy/policy.h"

namespace rauha::policy {

std::string_view ToString(ZoneType type) {
  return type == ZoneType::kPrivileged ? "privileged" : "non-global";
}

std::string_view ToString(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kBridged:
      return "bridged";
    case NetworkMode::kHost:
      return "host";
    case NetworkMode::kIsolated:
      break;
  }
  return "isolated";
}

std::string_view ToString(AdmissionMode mode) {
  return mode == AdmissionMode::kAudit ? "audit" : "enforce";
}

}  // namespace rauha::policy
