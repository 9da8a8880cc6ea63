// The store's prepared-statement cache (rauhad/store/stmt.h): a statement is lent to one user
// at a time, comes back reset with its bindings cleared, and the store's records read back as
// written over many uses of the same statements.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "rauhad/store/stmt.h"
#include "rauhad/store/store.h"

namespace rauha::store {
namespace {

class MemoryDb {
 public:
  MemoryDb() {
    EXPECT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  ~MemoryDb() { EXPECT_EQ(sqlite3_close(db_), SQLITE_OK) << "a statement was not finalised"; }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

TEST(StmtCache, ReusesAStatementAndLendsItToOneUserAtATime) {
  MemoryDb db;
  {
    StmtCache cache(db.get());
    const char* sql = "SELECT v FROM t ORDER BY v";
    int rc = 0;
    sqlite3_stmt* first = cache.Take(sql, &rc);
    ASSERT_EQ(rc, SQLITE_OK);
    // Taken while the first is out: its own statement.
    sqlite3_stmt* second = cache.Take(sql, &rc);
    ASSERT_EQ(rc, SQLITE_OK);
    EXPECT_NE(first, second);
    cache.Give(sql, first);
    cache.Give(sql, second);  // one is kept per SQL; this one is finalised
    EXPECT_EQ(cache.Take(sql, &rc), first);
    cache.Give(sql, first);
  }
  // ~MemoryDb checks that the cache finalised what it kept (sqlite3_close refuses otherwise).
}

TEST(StmtCache, AStatementComesBackResetWithoutItsBindings) {
  MemoryDb db;
  StmtCache cache(db.get());
  {
    // Left after its first row: the next user starts from the first row again.
    Stmt s(cache, "SELECT v FROM t WHERE v >= ?1 ORDER BY v");
    ASSERT_TRUE(s.prepared().ok());
    s.Bind(1, int64_t{2});
    ASSERT_EQ(s.Step(), SQLITE_ROW);
    EXPECT_EQ(s.Int(0), 2);
  }
  {
    Stmt s(cache, "SELECT v FROM t WHERE v >= ?1 ORDER BY v");
    ASSERT_TRUE(s.prepared().ok());
    // No binding: NULL, which no row is >= to.
    EXPECT_EQ(s.Step(), SQLITE_DONE);
  }
  {
    Stmt s(cache, "SELECT v FROM t WHERE v >= ?1 ORDER BY v");
    s.Bind(1, int64_t{1});
    ASSERT_EQ(s.Step(), SQLITE_ROW);
    EXPECT_EQ(s.Int(0), 1);
  }
}

TEST(StmtCache, ABadStatementIsAnErrorEachTime) {
  MemoryDb db;
  StmtCache cache(db.get());
  for (int i = 0; i < 2; ++i) {
    Stmt s(cache, "SELECT nope FROM missing_table");
    EXPECT_FALSE(s.prepared().ok());
  }
}

TEST(StoreStatements, ZoneRecordsReadBackOverRepeatedWrites) {
  char tmpl[] = "/tmp/rauha-stmt-test-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  {
    auto store = Store::Open(dir + "/rauha.db");
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 50; ++i) {
      ZoneRecord z;
      z.id = "id-" + std::to_string(i % 5);
      z.name = "zone-" + std::to_string(i % 5);
      z.state = i % 2 ? "Running" : "Ready";
      z.temporary = i % 3 == 0;
      ASSERT_TRUE((*store)->PutZone(z).ok());
      if (i % 7 == 6) {
        ASSERT_TRUE((*store)->DeleteZone(z.id).ok());
      }
    }
    auto zones = (*store)->ListZones();
    ASSERT_TRUE(zones.ok());
    // i = 45..49 wrote each id last (i = 48 deleted id-3 after writing it).
    ASSERT_EQ(zones->size(), 4u);
    for (const ZoneRecord& z : *zones) {
      EXPECT_NE(z.id, "id-3");
      int last = 45 + (z.id.back() - '0');
      EXPECT_EQ(z.state, last % 2 ? "Running" : "Ready") << z.id;
      EXPECT_EQ(z.temporary, last % 3 == 0) << z.id;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rauha::store
