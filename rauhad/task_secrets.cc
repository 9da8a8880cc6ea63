#include "rauhad/task_secrets.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// Random, and shaped so that no real credential looks like it.
absl::StatusOr<std::string> NewPlaceholder() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "rauha-placeholder-";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  std::string prefix = StrCat(key, "=");
  for (auto& kv : env) {
    if (kv.rfind(prefix, 0) == 0) {
      kv = prefix + value;
      return;
    }
  }
  env.push_back(prefix + value);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TaskSecrets>> TaskSecrets::Grant(
    secrets::SecretStore* store, egress::EgressProxy* proxy, const ZoneView& zone,
    const std::string& task_id, const std::set<std::string>& request_env_keys,
    shim::TaskSpec& spec) {
  const auto& wanted = zone.policy.secrets;
  if (wanted.empty()) return nullptr;
  if (zone.policy.network.mode == policy::NetworkMode::kHost) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", zone.name,
               "\" has [secrets] but uses the host's network, where there is no egress proxy "
               "to inject them; use an \"isolated\" or \"bridged\" zone"));
  }
  if (store == nullptr || proxy == nullptr) {
    return absl::FailedPreconditionError("this rauhad has no secret store or egress proxy");
  }
  egress::SecretBindings bindings;
  for (const auto& rule : wanted) {
    if (request_env_keys.count(rule.name)) {
      return absl::InvalidArgumentError(
          StrCat("env ", rule.name, " is set by the request, but zone \"", zone.name,
                 "\" gives tasks that variable ([secrets.", rule.name,
                 "]: a placeholder the proxy replaces); drop it from the request's env"));
    }
    auto value = store->Get(rule.name);
    if (absl::IsNotFound(value.status())) {
      return absl::FailedPreconditionError(
          StrCat("zone \"", zone.name, "\" names secret ", rule.name, " ([secrets.", rule.name,
                 "]), but rauhad stores no secret of that name: store it with `rauha secret set ",
                 rule.name, "` (value on stdin)"));
    }
    if (!value.ok()) return Annotate(value.status(), StrCat("secret ", rule.name));
    auto b = std::make_shared<egress::SecretBinding>();
    b->name = rule.name;
    RAUHA_ASSIGN_OR_RETURN(b->placeholder, NewPlaceholder());
    b->value = value->view();
    b->hosts = rule.hosts;
    b->header = rule.header;
    b->format = rule.format;
    SetEnv(spec.env, rule.name, b->placeholder);
    bindings.push_back(std::move(b));
  }
  std::string bundle = proxy->TrustBundlePath(zone.id);
  if (bundle.empty()) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", zone.name, "\" has no egress CA (its proxy listener is missing)"));
  }
  struct stat st {};
  if (::stat(kZoneCaBundlePath, &st) != 0 && spec.image_layers.empty()) {
    return absl::FailedPreconditionError(
        StrCat("the host has no ", kZoneCaBundlePath,
               ", over which zones get their trust bundle (install ca-certificates)"));
  }
  spec.mounts.push_back({bundle, kZoneCaBundlePath, /*readonly=*/true, 0, 0});
  for (const char* k :
       {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"}) {
    SetEnv(spec.env, k, kZoneCaBundlePath);
  }
  RAUHA_RETURN_IF_ERROR(proxy->AddTaskSecrets(zone.id, task_id, std::move(bindings)));
  return std::unique_ptr<TaskSecrets>(new TaskSecrets(proxy, zone.id, task_id));
}

TaskSecrets::~TaskSecrets() { proxy_->RemoveTaskSecrets(zone_id_, task_id_); }

}  // namespace rauha
