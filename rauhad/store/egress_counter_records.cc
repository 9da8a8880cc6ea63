#include "rauha-common/errors.h"
#include "rauhad/store/stmt.h"
#include "rauhad/store/store.h"

namespace rauha::store {

const char kEgressCounterSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS egress_counters (
  zone_id TEXT PRIMARY KEY,
  bytes_out INTEGER NOT NULL DEFAULT 0,
  bytes_in INTEGER NOT NULL DEFAULT 0,
  connections INTEGER NOT NULL DEFAULT 0,
  refused INTEGER NOT NULL DEFAULT 0,
  secrets_injected INTEGER NOT NULL DEFAULT 0,
  secret_misuses INTEGER NOT NULL DEFAULT 0,
  tls_terminated INTEGER NOT NULL DEFAULT 0,
  budget_closed INTEGER NOT NULL DEFAULT 0
);
)sql";

namespace {

int64_t Col(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t Count(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

}  // namespace

absl::Status Store::PutEgressCounters(const std::vector<EgressCounterRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> absl::Status {
    for (const auto& r : records) {
      // Only for a zone still recorded: a zone deleted after its counters were read keeps none.
      Stmt s(db_,
             "INSERT INTO egress_counters (zone_id, bytes_out, bytes_in, connections, refused, "
             "secrets_injected, secret_misuses, tls_terminated, budget_closed) "
             "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM zones WHERE "
             "id = ?1) ON CONFLICT(zone_id) DO UPDATE SET bytes_out = excluded.bytes_out, "
             "bytes_in = excluded.bytes_in, connections = excluded.connections, refused = "
             "excluded.refused, secrets_injected = excluded.secrets_injected, secret_misuses = "
             "excluded.secret_misuses, tls_terminated = excluded.tls_terminated, budget_closed = "
             "excluded.budget_closed");
      RAUHA_RETURN_IF_ERROR(s.prepared());
      s.Bind(1, r.zone_id);
      s.Bind(2, Col(r.bytes_out));
      s.Bind(3, Col(r.bytes_in));
      s.Bind(4, Col(r.connections));
      s.Bind(5, Col(r.refused));
      s.Bind(6, Col(r.secrets_injected));
      s.Bind(7, Col(r.secret_misuses));
      s.Bind(8, Col(r.tls_terminated));
      s.Bind(9, Col(r.budget_closed));
      RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EgressCounterRecord>> Store::ListEgressCounters() {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT zone_id, bytes_out, bytes_in, connections, refused, secrets_injected, "
         "secret_misuses, tls_terminated, budget_closed FROM egress_counters ORDER BY zone_id");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  std::vector<EgressCounterRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    EgressCounterRecord r;
    r.zone_id = s.Text(0);
    r.bytes_out = Count(s.Int(1));
    r.bytes_in = Count(s.Int(2));
    r.connections = Count(s.Int(3));
    r.refused = Count(s.Int(4));
    r.secrets_injected = Count(s.Int(5));
    r.secret_misuses = Count(s.Int(6));
    r.tls_terminated = Count(s.Int(7));
    r.budget_closed = Count(s.Int(8));
    out.push_back(std::move(r));
  }
  RAUHA_RETURN_IF_ERROR(s.Done(rc));
  return out;
}

}  // namespace rauha::store
