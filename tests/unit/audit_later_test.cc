// AuditLog::AppendLater and Recorder::Hold (rauhad/audit): a held record takes its place in the
// chain at once and is signed and written later, before any record after it, so the chain
// stays in the order things happened and verifies; a flush of the thread that held it makes
// it durable; nothing held is lost when the log closes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha-common/audit/chain_verifier.h"
#include "rauhad/audit/audit_log.h"
#include "rauhad/audit/recorder.h"

namespace rauha::audit {
namespace {

class AuditLaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-audit-later-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto log = AuditLog::Open({.dir = dir_ + "/audit"});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Segment() const {
    std::ifstream in(dir_ + "/audit/log-000000.ndjson");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // kind (and zone.state's state) of each record, in the file's order.
  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    std::istringstream in(Segment());
    for (std::string line; std::getline(in, line);) {
      auto r = nlohmann::json::parse(line);
      std::string kind = r["kind"];
      if (kind == "zone.state") kind += ":" + r["body"]["state"].get<std::string>();
      out.push_back(kind);
    }
    return out;
  }
  ChainReport Verify() const {
    ChainVerifier verifier(log_->current_key());
    verifier.AddSegment("log-000000.ndjson", Segment());
    return verifier.Finish();
  }
  int64_t HeadSeq() const {
    std::ifstream in(dir_ + "/audit/head.json");
    std::stringstream text;
    text << in.rdbuf();
    auto head = nlohmann::json::parse(text.str(), nullptr, false);
    return head.is_object() ? head.value("seq", int64_t{-1}) : -1;
  }

  std::string dir_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLaterTest, AHeldRecordIsWrittenBeforeAnotherThreadsLaterRecord) {
  log_->AppendLater("zone.state", "z1", {{"name", "a"}, {"state", "Running"}});
  EXPECT_TRUE(Kinds().empty()) << "held: not signed or written yet";
  // Another thread records something after it: the held record goes first.
  std::thread other(
      [&] { ASSERT_TRUE(log_->AppendNoSync("task.start", "z2", nlohmann::json::object()).ok()); });
  other.join();
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"zone.state:Running", "task.start"}));
  ChainReport report = Verify();
  EXPECT_TRUE(report.intact) << report.error;
  EXPECT_EQ(report.last_seq, 1);
}

TEST_F(AuditLaterTest, WritePendingWritesHeldRecordsInOrder) {
  log_->AppendLater("zone.state", "z1", {{"name", "a"}, {"state", "Running"}});
  log_->AppendLater("zone.state", "z1", {{"name", "a"}, {"state", "Ready"}});
  ASSERT_TRUE(log_->WritePending().ok());
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"zone.state:Running", "zone.state:Ready"}));
  ASSERT_TRUE(log_->WritePending().ok());  // nothing left: nothing written twice
  EXPECT_EQ(Kinds().size(), 2u);
  EXPECT_TRUE(Verify().intact);
}

TEST_F(AuditLaterTest, FlushThisThreadMakesTheHeldRecordDurable) {
  ASSERT_TRUE(log_->Append("daemon.start", "", nlohmann::json::object()).ok());
  log_->AppendLater("zone.state", "z1", {{"name", "a"}, {"state", "Running"}});
  ASSERT_TRUE(log_->FlushThisThread().ok());
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"daemon.start", "zone.state:Running"}));
  // The head names the last durable record: the held one, synced by this thread's flush.
  log_.reset();
  EXPECT_EQ(HeadSeq(), 1);
}

TEST_F(AuditLaterTest, ClosingTheLogWritesWhatIsHeld) {
  log_->AppendLater("zone.state", "z1", {{"name", "a"}, {"state", "Running"}});
  log_.reset();
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"zone.state:Running"}));
  auto reopened = AuditLog::Open({.dir = dir_ + "/audit"});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  log_ = *std::move(reopened);
  ASSERT_TRUE(log_->Append("daemon.start", "", nlohmann::json::object()).ok());
  ChainReport report = Verify();
  EXPECT_TRUE(report.intact) << report.error;
  EXPECT_EQ(report.last_seq, 1);
}

TEST_F(AuditLaterTest, RecorderHoldDefersZoneTransitionsUntilReleased) {
  Recorder recorder(log_.get());
  {
    Recorder::Hold hold(&recorder);
    recorder.ZoneTransition("z1", "a", "Running", "");
    EXPECT_TRUE(Kinds().empty());
    hold.Release();
    EXPECT_EQ(Kinds(), (std::vector<std::string>{"zone.state:Running"}));
    // Released: later transitions are written at once, and the end of the scope adds nothing.
    recorder.ZoneTransition("z1", "a", "Ready", "");
    EXPECT_EQ(Kinds().size(), 2u);
  }
  {
    Recorder::Hold hold(&recorder);
    recorder.ZoneTransition("z1", "a", "Running", "");
    // A record written directly while one is held comes after it.
    recorder.TaskStarted("z1", "t1", {"/bin/true"});
    EXPECT_EQ(Kinds().back(), "task.start");
  }
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"zone.state:Running", "zone.state:Ready",
                                               "zone.state:Running", "task.start"}));
  // The end of a Hold that was not released writes what it held.
  {
    Recorder::Hold hold(&recorder);
    recorder.ZoneTransition("z1", "a", "Stopping", "");
  }
  EXPECT_EQ(Kinds().back(), "zone.state:Stopping");
  ChainReport report = Verify();
  EXPECT_TRUE(report.intact) << report.error;
  EXPECT_EQ(report.records, 5u);
}

}  // namespace
}  // namespace rauha::audit
