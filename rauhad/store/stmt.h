// The SQLite statement wrapper shared by the store's files (zones and tasks, images).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "rauha-common/strcat.h"

namespace rauha::store {

extern const char kImageSchema[];          // image_records.cc
extern const char kContainerSchema[];      // container_records.cc
extern const char kEgressCounterSchema[];  // egress_counter_records.cc

// Statements of one connection kept prepared between uses. Compiling a statement (SQLite's
// parser and code generator) cost more CPU than running it: about a third of every zone's and
// task's record writes. A statement is lent to one Stmt at a time; a second Stmt of the same SQL
// while the first is out prepares its own, which is finalised after use. Must be destroyed
// before its connection is closed.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache() {
    for (auto& [sql, s] : idle_) sqlite3_finalize(s);
  }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  sqlite3* db() const { return db_; }
  // The idle statement of `sql`, or a new one; SQLite's result code in *rc.
  sqlite3_stmt* Take(const char* sql, int* rc) {
    {
      std::lock_guard lock(mu_);
      if (auto it = idle_.find(sql); it != idle_.end()) {
        sqlite3_stmt* s = it->second;
        idle_.erase(it);
        *rc = SQLITE_OK;
        return s;
      }
    }
    sqlite3_stmt* s = nullptr;
    *rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    return s;
  }
  // Back from use: reset (its read or write ends here, as a finalize would end it) and kept,
  // unless another of the same SQL already is.
  void Give(const char* sql, sqlite3_stmt* s) {
    if (!s) return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    {
      std::lock_guard lock(mu_);
      if (idle_.emplace(sql, s).second) return;
    }
    sqlite3_finalize(s);
  }

 private:
  sqlite3* db_;
  std::mutex mu_;
  std::map<std::string, sqlite3_stmt*, std::less<>> idle_;
};

// Finalises a statement on every path (or, from a StmtCache, resets and returns it).
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
  }
  Stmt(StmtCache& cache, const char* sql) : db_(cache.db()), cache_(&cache), sql_(sql) {
    s_ = cache.Take(sql, &rc_);
  }
  ~Stmt() {
    if (cache_ && rc_ == SQLITE_OK) {
      cache_->Give(sql_, s_);
    } else {
      sqlite3_finalize(s_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
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
  StmtCache* cache_ = nullptr;
  const char* sql_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

}  // namespace rauha::store
