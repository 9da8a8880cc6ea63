// Secrets rauhad holds for the egress proxy to inject ([secrets.NAME] in a zone's policy): a
// SQLite file of their own (0600), each value sealed with SecretCipher under a key file kept
// outside it (made on the first `secret set`). What leaves this class towards clients is the
// name, when it was set and a digest; the value only ever goes to the proxy (Get).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/secrets/secret_cipher.h"

namespace rauha::secrets {

inline constexpr size_t kMaxSecretValueBytes = 8 * 1024;

struct SecretInfo {
  std::string name;
  std::string created_at;  // RFC 3339, when this value was set
  std::string sha256;      // lowercase hex of the value
};

// What a task or container was granted of one secret, kept while its process runs so that a
// restarted rauhad replaces its placeholder too (secret_grants.cc). Never the value: that is
// read from the store again, so a secret removed meanwhile is not brought back.
struct SecretGrant {
  std::string name;
  std::string placeholder;
  std::vector<std::string> hosts;  // canonical policy::HostRule text
  std::string header;
  std::string format;
};

// A value that can go into an HTTP header: 1 to kMaxSecretValueBytes bytes, no control
// character but tab (CR or LF would let it forge headers). InvalidArgument saying so; the
// message never quotes the value.
absl::Status ValidateSecretValue(std::string_view value);

class SecretStore {
 public:
  // Opens (creating, 0600) the database at `db_path`; an existing file is made 0600. The key
  // at `key_path` is read when first needed, and made by the first Set.
  static absl::StatusOr<std::unique_ptr<SecretStore>> Open(const std::string& db_path,
                                                           const std::string& key_path);
  ~SecretStore();
  SecretStore(const SecretStore&) = delete;
  SecretStore& operator=(const SecretStore&) = delete;

  // Stores (or replaces) `name`. `replaced` says whether it existed.
  absl::StatusOr<SecretInfo> Set(const std::string& name, std::string_view value, bool* replaced);
  absl::StatusOr<std::vector<SecretInfo>> List();
  // NotFound when there is no such secret.
  absl::StatusOr<SecretInfo> Remove(const std::string& name);
  // The value; NotFound when there is no such secret.
  absl::StatusOr<SecretBytes> Get(const std::string& name);

  // Grants (secret_grants.cc), by owner: a sandbox task's id or a container's task id. Each
  // placeholder is sealed like a value (the owner and name as associated data). Remove drops
  // the removed secret's grants in its transaction.
  // Replaces the owner's grants.
  absl::Status PutGrants(const std::string& owner, const std::string& zone_id,
                         const std::vector<SecretGrant>& grants);
  // The owner's grants as an earlier rauhad stored them, if they were for `zone_id` (none
  // otherwise); the owner counts as claimed (ForgetUnclaimedGrants keeps them).
  absl::StatusOr<std::vector<SecretGrant>> ClaimGrants(const std::string& owner,
                                                       const std::string& zone_id);
  absl::Status ForgetGrants(const std::string& owner);
  // After recovery: forgets the grants of every owner neither granted nor claimed since this
  // store was opened (their process ended while no rauhad ran). How many owners that was.
  absl::StatusOr<size_t> ForgetUnclaimedGrants();
  // Owners that hold grants (for tests and the recovery log).
  absl::StatusOr<std::vector<std::string>> GrantOwners();

  const std::string& db_path() const { return db_path_; }
  const std::string& key_path() const { return key_path_; }

 private:
  SecretStore(sqlite3* db, std::string db_path, std::string key_path)
      : db_(db), db_path_(std::move(db_path)), key_path_(std::move(key_path)) {}
  absl::StatusOr<const SecretCipher*> Cipher(bool create);  // mu_ held
  absl::Status Exec(const char* sql);                       // mu_ held

  std::mutex mu_;
  sqlite3* db_;
  std::string db_path_, key_path_;
  std::optional<SecretCipher> cipher_;
  std::set<std::string> claimed_;  // owners granted or claimed by this rauhad
};

}  // namespace rauha::secrets
