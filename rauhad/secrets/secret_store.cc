#include "rauhad/secrets/secret_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/names.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauhad/store/stmt.h"

namespace rauha::secrets {
namespace {

// secure_delete: a removed or replaced row's pages are zeroed, not left in the file's free
// list (the values are sealed; their nonces and lengths need not linger either).
constexpr const char* kSchema = R"sql(
PRAGMA secure_delete=ON;
CREATE TABLE IF NOT EXISTS secrets (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
  owner TEXT NOT NULL,
  zone_id TEXT NOT NULL,
  name TEXT NOT NULL,
  sealed_placeholder BLOB NOT NULL,
  rule_json TEXT NOT NULL,
  PRIMARY KEY (owner, name)
);
)sql";

}  // namespace

absl::Status ValidateSecretValue(std::string_view value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(
        "the secret's value is empty: pass it on stdin (printf %s \"$TOKEN\" | rauha secret set "
        "NAME)");
  }
  if (value.size() > kMaxSecretValueBytes) {
    return absl::InvalidArgumentError(StrCat("the secret's value is ", value.size(),
                                             " bytes; at most ", kMaxSecretValueBytes,
                                             " fit in an HTTP header"));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat("the secret's value has a control character at byte ", i,
                 " (only tab is allowed: the value goes into an HTTP header, where CR or LF "
                 "would start another)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SecretStore>> SecretStore::Open(const std::string& db_path,
                                                               const std::string& key_path) {
  // Made 0600 before SQLite sees it (SQLite would use the umask); its journal takes the
  // database file's mode.
  UniqueFd fd(::open(db_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, StrCat("open secrets database ", db_path));
  if (::fchmod(fd.get(), 0600) != 0) return ErrnoStatus(errno, StrCat("chmod 600 ", db_path));
  fd.reset();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  std::unique_ptr<SecretStore> store(new SecretStore(db, db_path, key_path));
  if (rc != SQLITE_OK) {
    return absl::InternalError(StrCat("open secrets database ", db_path, ": ",
                                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  char* err = nullptr;
  if (sqlite3_exec(db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "?";
    sqlite3_free(err);
    return absl::InternalError(StrCat("secrets database ", db_path, ": ", message));
  }
  return store;
}

SecretStore::~SecretStore() { sqlite3_close_v2(db_); }

absl::StatusOr<const SecretCipher*> SecretStore::Cipher(bool create) {
  if (!cipher_) {
    auto loaded = SecretCipher::Load(key_path_, create);
    if (absl::IsNotFound(loaded.status())) {
      return absl::FailedPreconditionError(
          StrCat("the secret key file ", key_path_,
                 " is missing, so the stored secrets cannot be opened: restore it, or remove "
                 "and set the secrets again"));
    }
    if (!loaded.ok()) return loaded.status();
    cipher_.emplace(*std::move(loaded));
  }
  return &*cipher_;
}

absl::StatusOr<SecretInfo> SecretStore::Set(const std::string& name, std::string_view value,
                                            bool* replaced) {
  RAUHA_RETURN_IF_ERROR(ValidateSecretName(name));
  RAUHA_RETURN_IF_ERROR(ValidateSecretValue(value));
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(const SecretCipher* cipher, Cipher(true));
  RAUHA_ASSIGN_OR_RETURN(std::string sealed, cipher->Seal(name, value));
  SecretInfo info{name, NowRfc3339(), Sha256Hex(value)};
  {
    store::Stmt q(db_, "SELECT 1 FROM secrets WHERE name = ?");
    RAUHA_RETURN_IF_ERROR(q.prepared());
    q.Bind(1, name);
    *replaced = q.Step() == SQLITE_ROW;
  }
  store::Stmt s(db_,
                "INSERT OR REPLACE INTO secrets (name, created_at, sha256, sealed) "
                "VALUES (?, ?, ?, ?)");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, info.name);
  s.Bind(2, info.created_at);
  s.Bind(3, info.sha256);
  s.BindBlob(4, sealed);
  RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
  return info;
}

absl::StatusOr<std::vector<SecretInfo>> SecretStore::List() {
  std::lock_guard lock(mu_);
  store::Stmt s(db_, "SELECT name, created_at, sha256 FROM secrets ORDER BY name");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  std::vector<SecretInfo> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1), s.Text(2)});
  RAUHA_RETURN_IF_ERROR(s.Done(rc));
  return out;
}

absl::StatusOr<SecretInfo> SecretStore::Remove(const std::string& name) {
  RAUHA_RETURN_IF_ERROR(ValidateSecretName(name));
  std::lock_guard lock(mu_);
  SecretInfo info;
  {
    store::Stmt q(db_, "SELECT name, created_at, sha256 FROM secrets WHERE name = ?");
    RAUHA_RETURN_IF_ERROR(q.prepared());
    q.Bind(1, name);
    if (q.Step() != SQLITE_ROW) {
      return absl::NotFoundError(
          StrCat("no secret named ", name, " is stored (rauha secret list shows them)"));
    }
    info = {q.Text(0), q.Text(1), q.Text(2)};
  }
  // The secret and every grant of it go together: a task that outlives a restart does not get
  // a removed secret back (its placeholder then passes unreplaced).
  RAUHA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const char* sql :
       {"DELETE FROM secrets WHERE name = ?", "DELETE FROM grants WHERE name = ?"}) {
    store::Stmt s(db_, sql);
    absl::Status st = s.prepared();
    if (st.ok()) {
      s.Bind(1, name);
      st = s.Done(s.Step());
    }
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
  }
  RAUHA_RETURN_IF_ERROR(Exec("COMMIT"));
  return info;
}

absl::Status SecretStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "?";
    sqlite3_free(err);
    return absl::InternalError(StrCat("secrets database ", db_path_, ": ", sql, ": ", message));
  }
  return absl::OkStatus();
}

absl::StatusOr<SecretBytes> SecretStore::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  std::string sealed;
  {
    store::Stmt q(db_, "SELECT sealed FROM secrets WHERE name = ?");
    RAUHA_RETURN_IF_ERROR(q.prepared());
    q.Bind(1, name);
    if (q.Step() != SQLITE_ROW) {
      return absl::NotFoundError(StrCat("no secret named ", name, " is stored"));
    }
    sealed = q.Text(0);
  }
  RAUHA_ASSIGN_OR_RETURN(const SecretCipher* cipher, Cipher(false));
  return cipher->Open(name, sealed);
}

}  // namespace rauha::secrets
