// Zone and task metadata in SQLite (WAL). rauhad is the only writer; one connection, serialised
// by a mutex, so writes never interleave.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauhad/egress/egress_counts.h"

namespace rauha::store {

class StmtCache;  // stmt.h

struct ZoneRecord {
  std::string id;
  std::string name;
  std::string zone_type;  // "non-global" | "privileged"
  std::string state;      // lifecycle name ("Ready")
  std::string state_reason;
  std::string policy_toml;  // canonical
  std::string created_at;   // RFC 3339
  int64_t shim_pid = 0;
  bool temporary = false;  // created by RunSandbox for one task
  // The network namespace it was asked to join (a pod's, CreateZoneRequest.network_namespace):
  // a zone brought back by a new rauhad joins it again while it is still there. "": its own.
  std::string netns_path;
  std::string hostname;  // CreateZoneRequest.hostname; "": derived from the name
};

struct TaskRecord {
  std::string id;
  std::string zone_id;
  std::string command_json;  // JSON array of strings
  std::string state;         // "running" | "exited"
  int64_t pid = 0;
  std::string started_at;
  bool remove_zone = false;  // the zone goes once the result is collected
  std::string result;        // serialized rauha.sandbox.v1.SandboxResult once exited
};

// One IPv4 address of the zone subnet, held by a zone until the zone is deleted.
struct AddressRecord {
  std::string address;  // "10.89.0.2"
  std::string zone_id;
};

// One zone's block of host ids for its user namespace: [first, first + 65536), held from the
// zone's creation until it is deleted.
struct UsernsRangeRecord {
  uint32_t first = 0;
  std::string zone_id;
};

// A stored image: its platform manifest (the identity), what a container needs to run it, and
// the tags pointing at it (docker.io/library/busybox:latest form).
struct ImageRecord {
  std::string manifest_digest;
  std::string index_digest;  // the index / manifest list it was chosen from, or ""
  std::string media_type;    // of the manifest
  std::string config_digest;
  std::string config_json;
  std::string layers_json;        // [{"digest", "mediaType", "size"}], bottom first
  uint64_t size = 0;              // manifest + config + layers as stored (compressed)
  std::string created_at;         // the config's "created", else when it was stored (RFC 3339)
  std::vector<std::string> tags;  // filled by ListImages
};

// What the egress proxy counted for a zone (egress_counters.h): kept so that a restarted rauhad
// continues the counts, above all the bytes its byte budget is measured against.
struct EgressCounterRecord : egress::EgressCounts {
  std::string zone_id;

  bool operator==(const EgressCounterRecord&) const = default;
};

// A container: its identity columns and everything else as one JSON document that only
// rauhad/container reads (its command, image, state, exit code, times).
struct ContainerRecord {
  std::string id;
  std::string name;
  std::string zone_id;
  std::string data_json;
};

class Store {
 public:
  // Opens (creating if needed) the database at `path`, with WAL and the schema.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  absl::Status PutZone(const ZoneRecord& zone);  // insert or replace
  // Its egress counters go with it.
  absl::Status DeleteZone(const std::string& id);
  absl::StatusOr<std::vector<ZoneRecord>> ListZones();

  absl::Status PutTask(const TaskRecord& task);
  absl::Status DeleteTask(const std::string& id);
  absl::StatusOr<std::vector<TaskRecord>> ListTasks();

  // IPAM: AlreadyExists when the address is held by any zone.
  absl::Status PutAddress(const AddressRecord& a);
  absl::Status ReleaseAddresses(const std::string& zone_id);
  absl::StatusOr<std::vector<AddressRecord>> ListAddresses();

  // User namespace ranges: AlreadyExists when `first` is held by any zone or the zone holds
  // one already.
  absl::Status PutUsernsRange(const UsernsRangeRecord& r);
  absl::Status ReleaseUsernsRange(const std::string& zone_id);
  absl::StatusOr<std::vector<UsernsRangeRecord>> ListUsernsRanges();

  // Images (image_records.cc). PutImage inserts or replaces the image and, in the same
  // transaction, points each of `tags` at it (a tag moves from any other image).
  absl::Status PutImage(const ImageRecord& image, const std::vector<std::string>& tags);
  absl::StatusOr<std::vector<ImageRecord>> ListImages();
  // Containers (container_records.cc). PutContainer inserts or replaces; AlreadyExists when
  // another container has the name.
  absl::Status PutContainer(const ContainerRecord& c);
  absl::Status DeleteContainer(const std::string& id);
  absl::StatusOr<std::vector<ContainerRecord>> ListContainers();

  // Egress counters (egress_counter_records.cc). PutEgressCounters writes all of `records` in one
  // transaction, skipping zones that are not (or no longer) recorded.
  absl::Status PutEgressCounters(const std::vector<EgressCounterRecord>& records);
  absl::StatusOr<std::vector<EgressCounterRecord>> ListEgressCounters();

  // Removes the image and every tag of it.
  absl::Status DeleteImage(const std::string& manifest_digest);
  // NotFound when no such tag.
  absl::Status DeleteTag(const std::string& tag);

 private:
  explicit Store(sqlite3* db);
  absl::Status Exec(const char* sql);
  // BEGIN IMMEDIATE, body, then COMMIT, or ROLLBACK and body's error. The caller holds mu_.
  absl::Status InTransaction(const std::function<absl::Status()>& body);
  absl::StatusOr<bool> HasColumn(const std::string& table, const std::string& column);
  std::mutex mu_;
  sqlite3* db_;
  std::unique_ptr<StmtCache> stmts_;  // the zones', tasks', ids' statements, prepared once
};

// Logs a refused write that the caller can only report, not undo (the next start reads the
// kernel and the records again): "rauhad: <what>: <status>".
void LogRefused(const absl::Status& status, std::string_view what);

}  // namespace rauha::store
