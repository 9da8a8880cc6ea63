// A sandbox task's secrets ([secrets.NAME] of its zone's policy): each stored value is read,
// the task gets NAME=<a random placeholder of its own> instead, and the egress proxy learns
// which placeholder stands for which value until the task ends (the grant's lifetime). The
// task also gets the zone's trust bundle (the host's CAs plus the zone's egress CA) over
// /etc/ssl/certs/ca-certificates.crt and in SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
// NODE_EXTRA_CA_CERTS and CURL_CA_BUNDLE, so its TLS clients accept the proxy's certificates
// for the secrets' hosts.
//
// The grant outlives a rauhad crash as its task does: the secret store keeps each placeholder
// (sealed) and the rule it was given under, never the value, from before the task starts until
// the grant ends (SecretStore::PutGrants). A restarted rauhad restores the grants of the tasks
// and containers it finds running (Restore), reading the values from the store again, so a
// secret removed meanwhile stays removed; then it forgets the rest (ForgetUnclaimedGrants).
#pragma once

#include <map>
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
  // After a restart: the grant of a task or container of zone `zone_id` that outlived it, as
  // Grant stored it, without the secrets removed since (their placeholders pass unreplaced).
  // nullptr when nothing is left. `env` gets what Grant put in the task's environment
  // (placeholders, trust bundle variables). An error forgets the stored grant.
  static absl::StatusOr<std::unique_ptr<TaskSecrets>> Restore(
      secrets::SecretStore* store, egress::EgressProxy* proxy, const std::string& zone_id,
      const std::string& task_id, std::map<std::string, std::string>* env);
  // The proxy forgets the placeholders, the store the grant: the task has ended.
  ~TaskSecrets();
  TaskSecrets(const TaskSecrets&) = delete;
  TaskSecrets& operator=(const TaskSecrets&) = delete;

 private:
  TaskSecrets(secrets::SecretStore* store, egress::EgressProxy* proxy, std::string zone_id,
              std::string task_id)
      : store_(store), proxy_(proxy), zone_id_(std::move(zone_id)), task_id_(std::move(task_id)) {}
  secrets::SecretStore* store_;
  egress::EgressProxy* proxy_;
  std::string zone_id_, task_id_;
};

}  // namespace rauha
