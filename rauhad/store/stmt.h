// The SQLite statement wrapper shared by the store's files (zones and tasks, images).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "rauha-common/strcat.h"

namespace rauha::store {

extern const char kImageSchema[];          // image_records.cc
extern const char kContainerSchema[];      // container_records.cc
extern const char kEgressCounterSchema[];  // egress_counter_records.cc

// Finalises a statement on every path.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  absl::Status prepared() const {
    return rc_ == SQLITE_OK ? absl::OkStatus()
                            : absl::InternalError(StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_blob(s_, col));
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(p, static_cast<size_t>(n)) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  absl::Status Done(int rc) {
    if (rc == SQLITE_DONE) return absl::OkStatus();
    if (rc == SQLITE_CONSTRAINT) {
      return absl::AlreadyExistsError(StrCat("sqlite: ", sqlite3_errmsg(db_)));
    }
    if ((rc & 0xff) == SQLITE_FULL) {
      // SQLite rolled the statement back: nothing of it was recorded.
      const char* path = sqlite3_db_filename(db_, "main");
      return absl::ResourceExhaustedError(StrCat("the database ", path ? path : "",
                                                 " refused the change (", sqlite3_errmsg(db_),
                                                 "): free space on its file system and try again"));
    }
    return absl::InternalError(StrCat("sqlite: ", sqlite3_errmsg(db_)));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

}  // namespace rauha::store
