// Image records: one row per manifest, tags in their own table so a tag moves between images
// (a re-pull of a moved tag) in one statement.
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/store/stmt.h"
#include "rauhad/store/store.h"

namespace rauha::store {

const char kImageSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS images (
  manifest_digest TEXT PRIMARY KEY,
  index_digest TEXT NOT NULL DEFAULT '',
  media_type TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  config_json TEXT NOT NULL,
  layers_json TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_tags (
  tag TEXT PRIMARY KEY,
  manifest_digest TEXT NOT NULL REFERENCES images(manifest_digest) ON DELETE CASCADE
);
)sql";

absl::Status Store::PutImage(const ImageRecord& image, const std::vector<std::string>& tags) {
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> absl::Status {
    // UPSERT, not REPLACE: a REPLACE deletes the row first, which would cascade to its tags.
    Stmt s(db_,
           "INSERT INTO images (manifest_digest, index_digest, media_type, config_digest, "
           "config_json, layers_json, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
           "ON CONFLICT(manifest_digest) DO UPDATE SET index_digest = CASE WHEN "
           "excluded.index_digest = '' THEN index_digest ELSE excluded.index_digest END");
    RAUHA_RETURN_IF_ERROR(s.prepared());
    s.Bind(1, image.manifest_digest);
    s.Bind(2, image.index_digest);
    s.Bind(3, image.media_type);
    s.Bind(4, image.config_digest);
    s.Bind(5, image.config_json);
    s.Bind(6, image.layers_json);
    s.Bind(7, static_cast<int64_t>(image.size));
    s.Bind(8, image.created_at);
    RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
    for (const std::string& tag : tags) {
      Stmt t(db_, "INSERT OR REPLACE INTO image_tags (tag, manifest_digest) VALUES (?1, ?2)");
      RAUHA_RETURN_IF_ERROR(t.prepared());
      t.Bind(1, tag);
      t.Bind(2, image.manifest_digest);
      RAUHA_RETURN_IF_ERROR(t.Done(t.Step()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ImageRecord>> Store::ListImages() {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT manifest_digest, index_digest, media_type, config_digest, config_json, "
         "layers_json, size, created_at FROM images ORDER BY created_at, manifest_digest");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  std::vector<ImageRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ImageRecord r;
    r.manifest_digest = s.Text(0);
    r.index_digest = s.Text(1);
    r.media_type = s.Text(2);
    r.config_digest = s.Text(3);
    r.config_json = s.Text(4);
    r.layers_json = s.Text(5);
    r.size = static_cast<uint64_t>(s.Int(6));
    r.created_at = s.Text(7);
    out.push_back(std::move(r));
  }
  RAUHA_RETURN_IF_ERROR(s.Done(rc));
  Stmt t(db_, "SELECT tag, manifest_digest FROM image_tags ORDER BY tag");
  RAUHA_RETURN_IF_ERROR(t.prepared());
  while ((rc = t.Step()) == SQLITE_ROW) {
    std::string digest = t.Text(1);
    for (auto& r : out) {
      if (r.manifest_digest == digest) r.tags.push_back(t.Text(0));
    }
  }
  RAUHA_RETURN_IF_ERROR(t.Done(rc));
  return out;
}

absl::Status Store::DeleteImage(const std::string& manifest_digest) {
  std::lock_guard lock(mu_);
  // The tags go by ON DELETE CASCADE (foreign_keys is on for this connection).
  Stmt s(db_, "DELETE FROM images WHERE manifest_digest = ?1");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, manifest_digest);
  return s.Done(s.Step());
}

absl::Status Store::DeleteTag(const std::string& tag) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "DELETE FROM image_tags WHERE tag = ?1");
  RAUHA_RETURN_IF_ERROR(s.prepared());
  s.Bind(1, tag);
  RAUHA_RETURN_IF_ERROR(s.Done(s.Step()));
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(StrCat("no image tagged ", tag));
  return absl::OkStatus();
}

}  // namespace rauha::store
