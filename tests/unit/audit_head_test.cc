// head.json (rauhad/audit/audit_log.h): written behind the fsyncs by the log's own thread, it
// comes to name the last durable record while the log is open, and names it at once when the
// log closes (rauhad's stop), so records cut off the end are detected.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "nlohmann/json.hpp"
#include "rauhad/audit/audit_log.h"

namespace rauha::audit {
namespace {

class AuditHeadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-audit-head-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // head.json's seq, or -1 when there is none (yet).
  int64_t HeadSeq() const {
    std::ifstream in(dir_ + "/audit/head.json");
    std::stringstream text;
    text << in.rdbuf();
    auto head = nlohmann::json::parse(text.str(), nullptr, false);
    return head.is_object() ? head.value("seq", int64_t{-1}) : -1;
  }

  std::string dir_;
};

TEST_F(AuditHeadTest, HeadFollowsTheDurableRecordsAndNamesTheLastOneAtClose) {
  auto log = AuditLog::Open({.dir = dir_ + "/audit"});
  ASSERT_TRUE(log.ok()) << log.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*log)->Append("test.record", "", {{"i", i}}).ok());
  }
  // Written behind the fsync: wait for it, with a deadline far beyond kHeadInterval.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (HeadSeq() != 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(HeadSeq(), 2);
  // Appended and closed at once: the close writes the head the thread had no turn for.
  ASSERT_TRUE((*log)->Append("test.record", "", {{"i", 3}}).ok());
  ASSERT_TRUE((*log)->AppendNoSync("test.event", "", {{"i", 4}}).ok());
  log->reset();
  EXPECT_EQ(HeadSeq(), 3) << "the head names the last durable record, not the unsynced one";
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/audit/head.json.tmp"));
}

}  // namespace
}  // namespace rauha::audit
