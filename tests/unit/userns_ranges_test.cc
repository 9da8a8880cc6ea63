// The user namespace id pool (--userns-range), its persistent allocation, the [zone] userns
// policy key and how a zone without its own user namespace is reported: no kernel needed.
#include "rauhad/userns_ranges.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "rauha-common/policy/policy.h"
#include "rauha-common/userns.h"
#include "rauhad/zone_manager.h"

namespace rauha {
namespace {

class TempDb {
 public:
  TempDb() {
    char tmpl[] = "/tmp/rauha-userns-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempDb() { std::filesystem::remove_all(dir_); }
  std::unique_ptr<store::Store> Open() { return *store::Store::Open(dir_ + "/rauha.db"); }

 private:
  std::string dir_;
};

TEST(UsernsRangeFlag, ParsesBlocksAndOffAndRefusesNonsense) {
  auto pool = ParseUsernsRange("100000000:268435456");
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->first, 100000000u);
  EXPECT_EQ(pool->count, 268435456u);
  auto off = ParseUsernsRange("off");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->count, 0u);
  for (const char* bad :
       {"", "100000000", "x:65536", "100000000:", "100000000:65535", "100000000:0", "0:65536",
        "65535:65536", "4294901760:65536", "4294836224:131072", "99999999999:65536", "-1:65536"}) {
    auto p = ParseUsernsRange(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ParseUsernsRange("4294836224:65536").ok()) << "the last block below (uid_t)-1";
}

TEST(UsernsRanges, BlocksAreDistinctPersistentAndComeBack) {
  TempDb db;
  auto store = db.Open();
  UsernsRanges ranges({200000, 3 * kZoneIdCount}, store.get());
  auto a = ranges.Allocate("zone-a");
  auto b = ranges.Allocate("zone-b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 200000u);
  EXPECT_EQ(*b, 200000u + kZoneIdCount);
  EXPECT_EQ(*ranges.Allocate("zone-a"), *a) << "a zone keeps its block";
  auto c = ranges.Allocate("zone-c");
  ASSERT_TRUE(c.ok());
  auto full = ranges.Allocate("zone-d");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("--userns-range"), std::string::npos);

  // Another rauhad on the same database (a restart) sees the same blocks.
  store.reset();
  store = db.Open();
  UsernsRanges again({200000, 3 * kZoneIdCount}, store.get());
  EXPECT_EQ(again.Lookup("zone-b"), *b);
  ASSERT_TRUE(again.Release("zone-a").ok());
  EXPECT_FALSE(again.Lookup("zone-a").has_value());
  EXPECT_EQ(*again.Allocate("zone-d"), *a) << "the lowest free block";
  ASSERT_TRUE(again.ReleaseAllBut({"zone-d"}).ok());
  EXPECT_FALSE(again.Lookup("zone-b").has_value());
  EXPECT_FALSE(again.Lookup("zone-c").has_value());
  EXPECT_EQ(again.Lookup("zone-d"), *a);
  // The database itself refuses a block held twice.
  EXPECT_EQ(store->PutUsernsRange({*a, "zone-e"}).code(), absl::StatusCode::kAlreadyExists);
}

TEST(UsernsPolicy, KeyDefaultsOnParsesAndAppearsOnlyWhenOff) {
  auto def = policy::ParsePolicy("");
  ASSERT_TRUE(def.ok());
  EXPECT_TRUE(def->zone.userns);
  EXPECT_EQ(policy::ToCanonicalToml(*def).find("userns"), std::string::npos);
  auto off = policy::ParsePolicy("[zone]\nuserns = false\n");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->zone.userns);
  std::string canonical = policy::ToCanonicalToml(*off);
  EXPECT_NE(canonical.find("type = \"non-global\"\nuserns = false\n"), std::string::npos)
      << canonical;
  auto again = policy::ParsePolicy(canonical);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->zone.userns);
  auto bad = policy::ParsePolicy("[zone]\nuserns = \"no\"\n", "p.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("p.toml:2:10: zone.userns must be true or false"),
            std::string::npos)
      << bad.status().message();
}

TEST(UsernsGapReport, NamesTheReasonOnlyWhenAZoneThatAskedRunsWithoutIt) {
  HostLayers host;
  host.userns = false;
  host.userns_detail = "user namespaces do not work here: clone3: Operation not permitted";
  policy::Policy p = policy::DefaultPolicy();
  std::string gap = UsernsGap(p, policy::ZoneType::kNonGlobal, 0, host);
  EXPECT_EQ(gap.rfind("zone.userns: ", 0), 0u) << gap;
  EXPECT_NE(gap.find("clone3: Operation not permitted"), std::string::npos) << gap;
  EXPECT_EQ(UsernsGap(p, policy::ZoneType::kNonGlobal, 100000000, host), "") << "it has one";
  EXPECT_EQ(UsernsGap(p, policy::ZoneType::kPrivileged, 0, host), "") << "never asked";
  p.zone.userns = false;
  EXPECT_EQ(UsernsGap(p, policy::ZoneType::kNonGlobal, 0, host), "") << "turned off";
}

TEST(UsernsMapText, IsWhatTheKernelReads) {
  EXPECT_EQ(FormatIdMap({{0, 100000000, 65536}}), "0 100000000 65536\n");
  EXPECT_EQ(FormatIdMap({{1000, 100000000, 1}, {0, 5, 1}}), "1000 100000000 1\n0 5 1\n");
  EXPECT_EQ(DescribeZoneMapping(100065536), "uid/gid 0-65535 -> host 100065536-100131071");
}

}  // namespace
}  // namespace rauha
