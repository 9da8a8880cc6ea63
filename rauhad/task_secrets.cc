#include "rauhad/task_secrets.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstdio>

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

// Where TLS clients look for their CAs: each names the zone's trust bundle.
constexpr const char* kTrustVariables[] = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                                           "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"};

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
  std::vector<secrets::SecretGrant> grants;
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
    secrets::SecretGrant g{rule.name, b->placeholder, {}, rule.header, rule.format};
    for (const auto& h : rule.hosts) g.hosts.push_back(h.text);
    grants.push_back(std::move(g));
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
  for (const char* k : kTrustVariables) SetEnv(spec.env, k, kZoneCaBundlePath);
  // Stored before the task can start: a task that outlives rauhad always finds its grant.
  RAUHA_RETURN_IF_ERROR(store->PutGrants(task_id, zone.id, grants));
  if (auto st = proxy->AddTaskSecrets(zone.id, task_id, std::move(bindings)); !st.ok()) {
    (void)store->ForgetGrants(task_id);
    return st;
  }
  return std::unique_ptr<TaskSecrets>(new TaskSecrets(store, proxy, zone.id, task_id));
}

absl::StatusOr<std::unique_ptr<TaskSecrets>> TaskSecrets::Restore(
    secrets::SecretStore* store, egress::EgressProxy* proxy, const std::string& zone_id,
    const std::string& task_id, std::map<std::string, std::string>* env) {
  if (store == nullptr || proxy == nullptr) return nullptr;
  auto forget = [&](const absl::Status& st) {
    (void)store->ForgetGrants(task_id);
    return Annotate(st, StrCat("restoring the secrets granted to ", task_id));
  };
  auto grants = store->ClaimGrants(task_id, zone_id);
  if (!grants.ok()) return forget(grants.status());
  if (grants->empty()) {
    (void)store->ForgetGrants(task_id);
    return nullptr;
  }
  egress::SecretBindings bindings;
  std::vector<secrets::SecretGrant> kept;
  for (auto& g : *grants) {
    if (env) (*env)[g.name] = g.placeholder;  // it is in the task's environment either way
    auto value = store->Get(g.name);
    if (absl::IsNotFound(value.status())) {
      // Gone (rm drops the grants of the secret it removes, so only a database changed by
      // other means gets here): not brought back.
      std::fprintf(stderr,
                   "rauhad: task %s: secret %s is no longer stored; its placeholder passes "
                   "unreplaced\n",
                   task_id.c_str(), g.name.c_str());
      continue;
    }
    if (!value.ok()) return forget(Annotate(value.status(), StrCat("secret ", g.name)));
    auto b = std::make_shared<egress::SecretBinding>();
    b->name = g.name;
    b->placeholder = g.placeholder;
    b->value = value->view();
    for (const auto& text : g.hosts) {
      auto rule = policy::ParseHostRule(text);
      if (!rule.ok()) return forget(Annotate(rule.status(), StrCat("secret ", g.name)));
      b->hosts.push_back(*std::move(rule));
    }
    b->header = g.header;
    b->format = g.format;
    bindings.push_back(std::move(b));
    kept.push_back(std::move(g));
  }
  if (env) {
    for (const char* k : kTrustVariables) (*env)[k] = kZoneCaBundlePath;
  }
  if (kept.size() != grants->size()) {
    if (auto st = store->PutGrants(task_id, zone_id, kept); !st.ok()) return forget(st);
  }
  if (bindings.empty()) {
    (void)store->ForgetGrants(task_id);
    return nullptr;
  }
  if (auto st = proxy->AddTaskSecrets(zone_id, task_id, std::move(bindings)); !st.ok()) {
    return forget(st);
  }
  return std::unique_ptr<TaskSecrets>(new TaskSecrets(store, proxy, zone_id, task_id));
}

TaskSecrets::~TaskSecrets() {
  proxy_->RemoveTaskSecrets(zone_id_, task_id_);
  if (auto st = store_->ForgetGrants(task_id_); !st.ok()) {
    // Left for the next start's ForgetUnclaimedGrants (its task is not running then).
    std::fprintf(stderr, "rauhad: task %s: forgetting its secret grants: %s\n", task_id_.c_str(),
                 ToStd(st.message()).c_str());
  }
}

}  // namespace rauha
