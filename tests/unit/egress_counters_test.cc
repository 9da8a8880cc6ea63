// The egress proxy's counters kept in SQLite (egress_counters.h): written in a batch, only for
// zones the database still holds, read back into another proxy (another rauhad), and deleted
// with their zone. (A budget spent before a real restart is tested against the kernel in
// tests/integration/egress_budget_test.cc.)
#include "rauhad/egress_counters.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "rauhad/egress/proxy.h"
#include "rauhad/store/store.h"

namespace rauha {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rauha-egress-counters-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

store::ZoneRecord Zone(const std::string& id) {
  store::ZoneRecord z;
  z.id = id;
  z.name = "zone-" + id;
  z.zone_type = "non-global";
  z.state = "Ready";
  z.created_at = "2026-01-01T00:00:00Z";
  return z;
}

TEST(EgressCounterKeeperTest, KeepsCountersOfRecordedZonesAcrossProxies) {
  TempDir dir;
  auto db = store::Store::Open(dir.path() + "/rauha.db");
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->PutZone(Zone("z1")).ok());
  egress::ProxyZoneStats counted;
  counted.bytes_out = 10;
  counted.bytes_in = 20;
  counted.connections = 3;
  counted.refused = 1;
  counted.secrets_injected = 2;
  counted.budget_closed = 1;
  counted.open = 5;  // not a counter: not kept
  {
    auto proxy = egress::EgressProxy::Create({}, nullptr);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    EgressCounterKeeper keeper(db->get(), proxy->get());
    ASSERT_TRUE(keeper.Load().ok());
    (*proxy)->SeedCounters("z1", counted);
    (*proxy)->SeedCounters("not-recorded", counted);
    ASSERT_TRUE(keeper.Flush().ok());
    auto rows = (*db)->ListEgressCounters();
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u) << "a zone the database does not hold gets no row";
    EXPECT_EQ((*rows)[0].zone_id, "z1");
    EXPECT_EQ((*rows)[0].bytes_out, 10u);
    EXPECT_EQ((*rows)[0].bytes_in, 20u);
    EXPECT_EQ((*rows)[0].connections, 3u);
    EXPECT_EQ((*rows)[0].refused, 1u);
    EXPECT_EQ((*rows)[0].secrets_injected, 2u);
    EXPECT_EQ((*rows)[0].budget_closed, 1u);
    // More counted: Stop writes the last batch.
    counted.bytes_in = 4000;
    (*proxy)->SeedCounters("z1", counted);
    keeper.Stop();
  }
  // Another rauhad: its proxy starts from what was kept.
  auto proxy = egress::EgressProxy::Create({}, nullptr);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EgressCounterKeeper keeper(db->get(), proxy->get());
  ASSERT_TRUE(keeper.Load().ok());
  auto all = (*proxy)->AllCounters();
  ASSERT_EQ(all.count("z1"), 1u);
  EXPECT_EQ(all["z1"].bytes_in, 4000u);
  EXPECT_EQ(all["z1"].bytes_out, 10u);
  EXPECT_EQ(all["z1"].connections, 3u);
  EXPECT_EQ(all["z1"].open, 0u);
  EXPECT_EQ(all.count("not-recorded"), 0u);

  // The zone is deleted: its row goes with it, and the proxy forgets its counters.
  ASSERT_TRUE((*db)->DeleteZone("z1").ok());
  (*proxy)->ForgetZone("z1");
  ASSERT_TRUE(keeper.Flush().ok());
  auto rows = (*db)->ListEgressCounters();
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
  EXPECT_TRUE((*proxy)->AllCounters().empty());
}

}  // namespace
}  // namespace rauha
