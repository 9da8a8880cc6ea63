#include "rauha-common/errors.h"
#include "rauhad/store/stmt.h"
#include "rauhad/store/store.h"

namespace rauha::store {

const char kContainerSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  zone_id TEXT NOT NULL,
  data TEXT NOT NULL
);
)sql";

absl::Status Store::PutContainer(const ContainerRecord& c) {
  std::lock_guard lock(mu_);
  // UPSERT on the id: a REPLACE would also silently delete another container holding the name.
  Stmt s(db_,
         "INSERT INTO containers (id, name, zone_id, data) VALUES (?1, ?2, ?3, ?4) "
         "ON CONFLICT(id) DO UPDATE SET name = excluded.name, zone_id = excluded.zone_id, "
         "data = excluded.data");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, c.id);
  s.Bind(2, c.name);
  s.Bind(3, c.zone_id);
  s.Bind(4, c.data_json);
  return s.Done(s.Step());
}

absl::Status Store::DeleteContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "DELETE FROM containers WHERE id = ?1");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, id);
  return s.Done(s.Step());
}

absl::StatusOr<std::vector<ContainerRecord>> Store::ListContainers() {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT id, name, zone_id, data FROM containers ORDER BY id");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  std::vector<ContainerRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3)});
  }
  RAUHA_RETURN_IF_ERROR(s.Done(rc));
  return out;
}

}  // namespace rauha::store
