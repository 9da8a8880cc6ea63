// What a zone leaves in rauhad's database and run dir over its life: its record while it
// exists and nothing once it is deleted (a stale record is a zone the next start "recovers"),
// and in the run dir only what its shim needs.
#include <linux/magic.h>
#include <sqlite3.h>
#include <sys/statfs.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace zpb = rauha::zone::v1;

// id -> state of every zone record in the daemon's database, read as another process would.
std::map<std::string, std::string> ZoneRecords(const Daemon& d) {
  std::map<std::string, std::string> out;
  const std::string path = d.dir() + "/state/rauha.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << path << ": " << (db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT id, state FROM zones", -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "prepare: " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      out[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))] =
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::set<std::string> FilesIn(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

using ZoneRecordsTest = DaemonTest;

TEST_F(ZoneRecordsTest, DeletedZoneLeavesNoRecordAndNoRunDir) {
  ASSERT_TRUE(CreateZone("records-a").ok());
  const std::string id = daemon_->ZoneId("records-a");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(ZoneRecords(*daemon_)[id], "Ready");
  // The shim's socket and nothing else: its log file is made only when it logs something.
  const std::string run_dir = daemon_->dir() + "/run/zones/" + id;
  EXPECT_EQ(FilesIn(run_dir), std::set<std::string>{"shim.sock"});

  zpb::DeleteZoneRequest del;
  del.set_name("records-a");
  zpb::DeleteZoneResponse deleted;
  grpc::ClientContext del_ctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&del_ctx, del, &deleted).ok());
  // The delete has answered: its record is gone, not left as "Destroying" (which the next
  // start would take for an interrupted delete and tear down again).
  EXPECT_EQ(ZoneRecords(*daemon_).count(id), 0u) << "state " << ZoneRecords(*daemon_)[id];
  EXPECT_FALSE(std::filesystem::exists(run_dir)) << run_dir;
}

TEST_F(ZoneRecordsTest, SandboxZonesLeaveNoRecord) {
  // The default daemon has a warm pool: the first calls take pooled zones, removed after the
  // answer; a call the pool cannot serve makes and removes its own. Both kinds must go.
  std::set<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto result = Run({"/bin/true"});
    ASSERT_EQ(result.status(), "succeeded") << result.error();
    ASSERT_FALSE(result.zone_id().empty());
    ids.insert(result.zone_id());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::map<std::string, std::string> left;
  for (;;) {
    left.clear();
    for (const auto& [id, state] : ZoneRecords(*daemon_)) {
      if (ids.count(id)) left[id] = state;
    }
    bool dirs_gone = true;
    for (const std::string& id : ids) {
      dirs_gone = dirs_gone && !std::filesystem::exists(daemon_->dir() + "/run/zones/" + id);
    }
    if (left.empty() && dirs_gone) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << left.size() << " sandbox zone record(s) still in the database 30 s after the calls, "
        << "e.g. in state " << (left.empty() ? "-" : left.begin()->second);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The zones' dir is on a tmpfs (a disk file system's inode work per zone was a good part of a
// sandbox's CPU); on a run dir that is not a tmpfs, rauhad mounts its own, and unmounts it at
// its stop (the fixture's TearDown checks that no mount is left).
TEST_F(ZoneRecordsTest, ZonesDirIsATmpfs) {
  const std::string run = daemon_->dir() + "/run";
  const std::string zones = run + "/zones";
  struct statfs fs {};
  ASSERT_EQ(::statfs(zones.c_str(), &fs), 0) << zones;
  EXPECT_EQ(fs.f_type, static_cast<decltype(fs.f_type)>(TMPFS_MAGIC)) << zones;
  struct statfs run_fs {};
  ASSERT_EQ(::statfs(run.c_str(), &run_fs), 0) << run;
  bool mounted = false;
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    mounted = mounted || (line.find(" " + zones + " ") != std::string::npos &&
                          line.find(" - tmpfs rauha-zones ") != std::string::npos);
  }
  // Mounted by rauhad exactly when the run dir itself is not on a tmpfs.
  EXPECT_EQ(mounted, run_fs.f_type != static_cast<decltype(run_fs.f_type)>(TMPFS_MAGIC));
  ASSERT_TRUE(CreateZone("on-tmpfs").ok());
  auto result = Run({"/bin/true"});
  EXPECT_EQ(result.status(), "succeeded") << result.error();
}

}  // namespace
}  // namespace rauha::testing
