// The store keeps its statements prepared (store/stmt.h): a kept statement must behave as a
// fresh one would each time (no bindings or read transaction left from its last use, none
// poisoned by a refused write), and the connection must still close cleanly.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "rauhad/store/store.h"

namespace rauha::store {
namespace {

class StoreDir {
 public:
  StoreDir() {
    char tmpl[] = "/tmp/rauha-store-stmt-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~StoreDir() { std::filesystem::remove_all(dir_); }
  std::string db() const { return dir_ + "/rauha.db"; }

 private:
  std::string dir_;
};

TaskRecord Task(const std::string& id, int64_t pid) {
  return {id, "zone-1", "[\"/bin/true\"]", "running", pid, "2026-12-01T00:00:00Z", true, ""};
}

TEST(StoreKeptStatements, EachUseSeesOnlyItsOwnBindings) {
  StoreDir dir;
  auto store = Store::Open(dir.db());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutTask(Task("a", 10)).ok());
  TaskRecord b = Task("b", 20);
  b.result = "";  // the blob bound last time must not stay bound
  b.state = "exited";
  ASSERT_TRUE((*store)->PutTask(b).ok());
  ASSERT_TRUE((*store)->PutTask(Task("a", 11)).ok());  // replaces a
  ASSERT_TRUE((*store)->DeleteTask("b").ok());
  ASSERT_TRUE((*store)->DeleteTask("nobody").ok());
  auto tasks = (*store)->ListTasks();
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].id, "a");
  EXPECT_EQ((*tasks)[0].pid, 11);
  EXPECT_EQ((*tasks)[0].state, "running");
  // Listed again through the same kept statement: the same rows, from the start.
  auto again = (*store)->ListTasks();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 1u);
}

TEST(StoreKeptStatements, ARefusedWriteDoesNotPoisonTheNextOne) {
  StoreDir dir;
  auto store = Store::Open(dir.db());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutAddress({"10.88.0.2", "zone-1"}).ok());
  auto twice = (*store)->PutAddress({"10.88.0.2", "zone-2"});
  EXPECT_TRUE(absl::IsAlreadyExists(twice)) << twice;
  EXPECT_TRUE((*store)->PutAddress({"10.88.0.3", "zone-2"}).ok());
  auto all = (*store)->ListAddresses();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

// A kept statement that was not reset would hold a read transaction: the WAL could not be
// checkpointed past it, and the connection could not close (sqlite3_close refuses while
// statements are unfinalised, leaving the -wal file behind).
TEST(StoreKeptStatements, KeptStatementsHoldNoReadTransactionAndCloseCleanly) {
  StoreDir dir;
  {
    auto store = Store::Open(dir.db());
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE((*store)->PutTask(Task("t" + std::to_string(i), i)).ok());
    }
    ASSERT_TRUE((*store)->ListTasks().ok());
    ASSERT_TRUE((*store)->ListZones().ok());

    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open_v2(dir.db().c_str(), &other, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    // (A connection learns the database is in WAL mode at its first read.)
    ASSERT_EQ(sqlite3_exec(other, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr),
              SQLITE_OK);
    int log_frames = -1, checkpointed = -1;
    int rc = sqlite3_wal_checkpoint_v2(other, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                       &checkpointed);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(other);  // SQLITE_BUSY behind a reader
    sqlite3_close(other);
    struct stat st {};
    ASSERT_EQ(::stat((dir.db() + "-wal").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0) << "the checkpoint was held back by a reader";
  }
  // The last connection closed: SQLite checkpoints and removes the WAL only on a clean close.
  struct stat st {};
  EXPECT_NE(::stat((dir.db() + "-wal").c_str(), &st), 0) << "the store did not close cleanly";
  auto reopened = Store::Open(dir.db());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto tasks = (*reopened)->ListTasks();
  ASSERT_TRUE(tasks.ok());
  EXPECT_EQ(tasks->size(), 20u);
}

}  // namespace
}  // namespace rauha::store
