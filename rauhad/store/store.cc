#include "rauhad/store/store.h"

#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/store/stmt.h"

namespace rauha::store {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS zones (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  zone_type TEXT NOT NULL,
  state TEXT NOT NULL,
  state_reason TEXT NOT NULL DEFAULT '',
  policy_toml TEXT NOT NULL,
  created_at TEXT NOT NULL,
  shim_pid INTEGER NOT NULL DEFAULT 0,
  temporary INTEGER NOT NULL DEFAULT 0,
  netns_path TEXT NOT NULL DEFAULT '',
  hostname TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  zone_id TEXT NOT NULL,
  command TEXT NOT NULL,
  state TEXT NOT NULL,
  pid INTEGER NOT NULL DEFAULT 0,
  started_at TEXT NOT NULL,
  remove_zone INTEGER NOT NULL DEFAULT 0,
  result BLOB
);
CREATE TABLE IF NOT EXISTS ipam (
  address TEXT PRIMARY KEY,
  zone_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS userns_ranges (
  first INTEGER PRIMARY KEY,
  zone_id TEXT NOT NULL UNIQUE
);
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(StrCat("opening database ", path, ": ", msg));
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  // WAL: readers never block the writer; synchronous=NORMAL is durable across a process crash
  // (kill -9), which is what restart recovery relies on.
  for (const char* sql :
       {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", "PRAGMA foreign_keys=ON;",
        kSchema, kImageSchema, kContainerSchema, kEgressCounterSchema}) {
    auto status = store->Exec(sql);
    if (!status.ok())
      return absl::UnavailableError(StrCat("database ", path, ": ", status.message()));
  }
  // A database made by an older rauhad: the zones' columns added since.
  for (const char* column : {"netns_path", "hostname"}) {
    auto has = store->HasColumn("zones", column);
    if (!has.ok())
      return absl::UnavailableError(StrCat("database ", path, ": ", has.status().message()));
    if (*has) continue;
    std::string sql = StrCat("ALTER TABLE zones ADD COLUMN ", column, " TEXT NOT NULL DEFAULT '';");
    if (auto status = store->Exec(sql.c_str()); !status.ok()) {
      return absl::UnavailableError(StrCat("database ", path, ": ", status.message()));
    }
  }
  return store;
}

Store::Store(sqlite3* db) : db_(db), stmts_(std::make_unique<StmtCache>(db)) {}

Store::~Store() {
  stmts_.reset();  // its statements first: a connection with live statements does not close
  sqlite3_close(db_);
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

absl::Status Store::InTransaction(const std::function<absl::Status()>& body) {
  RAUHA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  if (absl::Status st = body(); !st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

absl::StatusOr<bool> Store::HasColumn(const std::string& table, const std::string& column) {
  std::lock_guard lock(mu_);
  Stmt s(db_, StrCat("SELECT name FROM pragma_table_info('", table, "')").c_str());
  if (auto st = s.prepared(); !st.ok()) return st;
  bool found = false;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) found = found || s.Text(0) == column;
  if (auto st = s.Done(rc); !st.ok()) return st;
  return found;
}

absl::Status Store::PutZone(const ZoneRecord& z) {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_,
         "INSERT OR REPLACE INTO zones (id, name, zone_type, state, state_reason, policy_toml, "
         "created_at, shim_pid, temporary, netns_path, hostname) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
         "?7, ?8, ?9, ?10, ?11)");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, z.id);
  s.Bind(2, z.name);
  s.Bind(3, z.zone_type);
  s.Bind(4, z.state);
  s.Bind(5, z.state_reason);
  s.Bind(6, z.policy_toml);
  s.Bind(7, z.created_at);
  s.Bind(8, z.shim_pid);
  s.Bind(9, int64_t{z.temporary});
  s.Bind(10, z.netns_path);
  s.Bind(11, z.hostname);
  return s.Done(s.Step());
}

absl::Status Store::DeleteZone(const std::string& id) {
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> absl::Status {
    for (const char* sql :
         {"DELETE FROM zones WHERE id = ?1", "DELETE FROM egress_counters WHERE zone_id = ?1"}) {
      Stmt s(*stmts_, sql);
      RAUHA_RETURN_IF_ERROR(s.prepared());
      s.Bind(1, id);
      RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ZoneRecord>> Store::ListZones() {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_,
         "SELECT id, name, zone_type, state, state_reason, policy_toml, created_at, shim_pid, "
         "temporary, netns_path, hostname FROM zones ORDER BY created_at, name");
  if (auto st = s.prepared(); !st.ok()) return st;
  std::vector<ZoneRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ZoneRecord z;
    z.id = s.Text(0);
    z.name = s.Text(1);
    z.zone_type = s.Text(2);
    z.state = s.Text(3);
    z.state_reason = s.Text(4);
    z.policy_toml = s.Text(5);
    z.created_at = s.Text(6);
    z.shim_pid = s.Int(7);
    z.temporary = s.Int(8) != 0;
    z.netns_path = s.Text(9);
    z.hostname = s.Text(10);
    out.push_back(std::move(z));
  }
  if (auto st = s.Done(rc); !st.ok()) return st;
  return out;
}

absl::Status Store::PutTask(const TaskRecord& t) {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_,
         "INSERT OR REPLACE INTO tasks (id, zone_id, command, state, pid, started_at, remove_zone, "
         "result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, t.id);
  s.Bind(2, t.zone_id);
  s.Bind(3, t.command_json);
  s.Bind(4, t.state);
  s.Bind(5, t.pid);
  s.Bind(6, t.started_at);
  s.Bind(7, int64_t{t.remove_zone});
  s.BindBlob(8, t.result);
  return s.Done(s.Step());
}

absl::Status Store::DeleteTask(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_, "DELETE FROM tasks WHERE id = ?1");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, id);
  return s.Done(s.Step());
}

absl::StatusOr<std::vector<TaskRecord>> Store::ListTasks() {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_,
         "SELECT id, zone_id, command, state, pid, started_at, remove_zone, result FROM tasks "
         "ORDER BY started_at");
  if (auto st = s.prepared(); !st.ok()) return st;
  std::vector<TaskRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    TaskRecord t;
    t.id = s.Text(0);
    t.zone_id = s.Text(1);
    t.command_json = s.Text(2);
    t.state = s.Text(3);
    t.pid = s.Int(4);
    t.started_at = s.Text(5);
    t.remove_zone = s.Int(6) != 0;
    t.result = s.Text(7);
    out.push_back(std::move(t));
  }
  if (auto st = s.Done(rc); !st.ok()) return st;
  return out;
}

absl::Status Store::PutAddress(const AddressRecord& a) {
  std::lock_guard lock(mu_);
  // Plain INSERT: the primary key is what makes an address impossible to hand out twice.
  Stmt s(*stmts_, "INSERT INTO ipam (address, zone_id) VALUES (?1, ?2)");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, a.address);
  s.Bind(2, a.zone_id);
  return s.Done(s.Step());
}

absl::Status Store::ReleaseAddresses(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_, "DELETE FROM ipam WHERE zone_id = ?1");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, zone_id);
  return s.Done(s.Step());
}

absl::StatusOr<std::vector<AddressRecord>> Store::ListAddresses() {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_, "SELECT address, zone_id FROM ipam");
  if (auto st = s.prepared(); !st.ok()) return st;
  std::vector<AddressRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1)});
  if (auto st = s.Done(rc); !st.ok()) return st;
  return out;
}

absl::Status Store::PutUsernsRange(const UsernsRangeRecord& r) {
  std::lock_guard lock(mu_);
  // Plain INSERT: the keys make a block impossible to hand to two zones, or two to one.
  Stmt s(*stmts_, "INSERT INTO userns_ranges (first, zone_id) VALUES (?1, ?2)");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, int64_t{r.first});
  s.Bind(2, r.zone_id);
  return s.Done(s.Step());
}

absl::Status Store::ReleaseUsernsRange(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_, "DELETE FROM userns_ranges WHERE zone_id = ?1");
  if (auto st = s.prepared(); !st.ok()) return st;
  s.Bind(1, zone_id);
  return s.Done(s.Step());
}

absl::StatusOr<std::vector<UsernsRangeRecord>> Store::ListUsernsRanges() {
  std::lock_guard lock(mu_);
  Stmt s(*stmts_, "SELECT first, zone_id FROM userns_ranges ORDER BY first");
  if (auto st = s.prepared(); !st.ok()) return st;
  std::vector<UsernsRangeRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({static_cast<uint32_t>(s.Int(0)), s.Text(1)});
  }
  if (auto st = s.Done(rc); !st.ok()) return st;
  return out;
}

void LogRefused(const absl::Status& status, std::string_view what) {
  if (status.ok()) return;
  std::fprintf(stderr, "rauhad: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               ToStd(status.message()).c_str());
}

}  // namespace rauha::store
