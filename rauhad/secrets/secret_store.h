// Secrets rauhad holds for the egress proxy to inject ([secrets.NAME] in a zone's policy): a
// SQLite file of their own (0600), each value sealed with SecretCipher under a key file kept
// outside it (made on the first `secret set`). What leaves this class towards clients is the
// name, when it was set and a digest; the value only ever goes to the proxy (Get).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <optional>
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

  const std::string& db_path() const { return db_path_; }
  const std::string& key_path() const { return key_path_; }

 private:
  SecretStore(sqlite3* db, std::string db_path, std::string key_path)
      : db_(db), db_path_(std::move(db_path)), key_path_(std::move(key_path)) {}
  absl::StatusOr<const SecretCipher*> Cipher(bool create);  // mu_ held

  std::mutex mu_;
  sqlite3* db_;
  std::string db_path_, key_path_;
  std::optional<SecretCipher> cipher_;
};

}  // namespace rauha::secrets
