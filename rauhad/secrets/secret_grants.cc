// SecretStore's grants: what a running task or container was given of each secret (its
// placeholder, sealed, and the rule it was given under), kept so that a rauhad restarted under
// it replaces its placeholders too. Rows live while their owner's process runs; the value is
// never among them.
#include <nlohmann/json.hpp>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/secrets/secret_store.h"
#include "rauhad/store/stmt.h"

namespace rauha::secrets {
namespace {

// The placeholder's associated data: a sealed placeholder copied to another owner's or another
// secret's row does not open.
std::string GrantAad(const std::string& owner, const std::string& name) {
  return StrCat("grant\n", owner, "\n", name);
}

}  // namespace

absl::Status SecretStore::PutGrants(const std::string& owner, const std::string& zone_id,
                                    const std::vector<SecretGrant>& grants) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(const SecretCipher* cipher, Cipher(false));
  std::vector<std::pair<std::string, std::string>> rows;  // sealed placeholder, rule
  for (const auto& g : grants) {
    RAUHA_ASSIGN_OR_RETURN(std::string sealed,
                           cipher->Seal(GrantAad(owner, g.name), g.placeholder));
    nlohmann::json rule = {{"hosts", g.hosts}, {"header", g.header}, {"format", g.format}};
    rows.emplace_back(std::move(sealed), rule.dump());
  }
  RAUHA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status st;
  {
    store::Stmt del(db_, "DELETE FROM grants WHERE owner = ?");
    st = del.prepared();
    if (st.ok()) {
      del.Bind(1, owner);
      st = del.Done(del.Step());
    }
  }
  for (size_t i = 0; st.ok() && i < grants.size(); ++i) {
    store::Stmt s(db_,
                  "INSERT INTO grants (owner, zone_id, name, sealed_placeholder, rule_json) "
                  "VALUES (?, ?, ?, ?, ?)");
    st = s.prepared();
    if (!st.ok()) break;
    s.Bind(1, owner);
    s.Bind(2, zone_id);
    s.Bind(3, grants[i].name);
    s.BindBlob(4, rows[i].first);
    s.Bind(5, rows[i].second);
    st = s.Done(s.Step());
  }
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return Annotate(st, StrCat("recording the secrets granted to ", owner));
  }
  RAUHA_RETURN_IF_ERROR(Exec("COMMIT"));
  claimed_.insert(owner);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SecretGrant>> SecretStore::ClaimGrants(const std::string& owner,
                                                                  const std::string& zone_id) {
  std::lock_guard lock(mu_);
  claimed_.insert(owner);
  std::vector<std::tuple<std::string, std::string, std::string>> rows;  // name, sealed, rule
  {
    store::Stmt q(db_,
                  "SELECT name, sealed_placeholder, rule_json FROM grants WHERE owner = ? AND "
                  "zone_id = ? ORDER BY name");
    RAUHA_RETURN_IF_ERROR(q.prepared());
    q.Bind(1, owner);
    q.Bind(2, zone_id);
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) rows.emplace_back(q.Text(0), q.Text(1), q.Text(2));
    RAUHA_RETURN_IF_ERROR(q.Done(rc));
  }
  if (rows.empty()) return std::vector<SecretGrant>{};
  RAUHA_ASSIGN_OR_RETURN(const SecretCipher* cipher, Cipher(false));
  std::vector<SecretGrant> out;
  for (const auto& [name, sealed, rule_json] : rows) {
    auto placeholder = cipher->Open(GrantAad(owner, name), sealed);
    if (!placeholder.ok()) {
      return Annotate(placeholder.status(), StrCat("the grant of secret ", name, " to ", owner));
    }
    auto rule = nlohmann::json::parse(rule_json, nullptr, false);
    SecretGrant g;
    g.name = name;
    g.placeholder = placeholder->view();
    try {
      g.hosts = rule.at("hosts").get<std::vector<std::string>>();
      g.header = rule.at("header").get<std::string>();
      g.format = rule.at("format").get<std::string>();
    } catch (const nlohmann::json::exception&) {
      return absl::DataLossError(
          StrCat("the grant of secret ", name, " to ", owner, " has an unreadable rule"));
    }
    out.push_back(std::move(g));
  }
  return out;
}

absl::Status SecretStore::ForgetGrants(const std::string& owner) {
  std::lock_guard lock(mu_);
  claimed_.erase(owner);
  store::Stmt s(db_, "DELETE FROM grants WHERE owner = ?");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, owner);
  return s.Done(s.Step());
}

absl::StatusOr<size_t> SecretStore::ForgetUnclaimedGrants() {
  std::lock_guard lock(mu_);
  std::vector<std::string> gone;
  {
    store::Stmt q(db_, "SELECT DISTINCT owner FROM grants");
    RAUHA_RETURN_IF_ERROR(q.prepared());
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      std::string owner = q.Text(0);
      if (!claimed_.count(owner)) gone.push_back(std::move(owner));
    }
    RAUHA_RETURN_IF_ERROR(q.Done(rc));
  }
  for (const auto& owner : gone) {
    store::Stmt s(db_, "DELETE FROM grants WHERE owner = ?");
    RAUHA_RETURN_IF_ERROR(s.prepared());
    s.Bind(1, owner);
    RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
  }
  return gone.size();
}

absl::StatusOr<std::vector<std::string>> SecretStore::GrantOwners() {
  std::lock_guard lock(mu_);
  store::Stmt q(db_, "SELECT DISTINCT owner FROM grants ORDER BY owner");
  RAUHA_RETURN_IF_ERROR(q.prepared());
  std::vector<std::string> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(q.Text(0));
  RAUHA_RETURN_IF_ERROR(q.Done(rc));
  return out;
}

}  // namespace rauha::secrets
