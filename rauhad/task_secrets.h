// A sandbox task's secrets ([secrets.NAME] of its zone's policy): each stored value is read,
// the task gets NAME=<a random placeholder of its own> instead, and the egress proxy learns
// which placeholder stands for which value until the task ends (the grant's lifetime). The
// task also gets the zone's trust bundle (the host's CAs plus the zone's egress CA) over
// /etc/ssl/certs/ca-certificates.crt and in SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
// NODE_EXTRA_CA_CERTS and CURL_CA_BUNDLE, so its TLS clients accept the proxy's certificates
// for the secrets' hosts.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "rauha-common/shim_protocol.h"
#include "rauhad/egress/proxy.h"
#include "rauhad/secrets/secret_store.h"
#include "rauhad/zone_manager.h"

namespace rauha {

inline constexpr char kZoneCaBundlePath[] = "/etc/ssl/certs/ca-certificates.crt";

class TaskSecrets {
 public:
  // Nothing to grant (the policy names no secret): nullptr. FailedPrecondition naming the
  // secret when one is not stored (or the zone has no proxy); InvalidArgument when the request's
  // own environment sets a secret's variable (`request_env_keys`).
  static absl::StatusOr<std::unique_ptr<TaskSecrets>> Grant(
      secrets::SecretStore* store, egress::EgressProxy* proxy, const ZoneView& zone,
      const std::string& task_id, const std::set<std::string>& request_env_keys,
      shim::TaskSpec& spec);
  ~TaskSecrets();
  TaskSecrets(const TaskSecrets&) = delete;
  TaskSecrets& operator=(const TaskSecrets&) = delete;

 private:
  TaskSecrets(egress::EgressProxy* proxy, std::string zone_id, std::string task_id)
      : proxy_(proxy), zone_id_(std::move(zone_id)), task_id_(std::move(task_id)) {}
  egress::EgressProxy* proxy_;
  std::string zone_id_, task_id_;
};

}  // namespace rauha
