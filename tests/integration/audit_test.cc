// The audit log against a real rauhad: zone and sandbox commands leave a chain that verifies
// (with our verifier and with an independent one in Python + openssl), every kind of tampering
// is found and named, receipts check results, a kill -9 during a burst leaves a chain that
// verifies, and key rotation follows from the first key.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;
namespace sb = rauha::sandbox::v1;
namespace zv = rauha::zone::v1;

struct ShellRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

// Runs a shell command line (test-controlled arguments only).
ShellRun Sh(const std::string& command) {
  ShellRun r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class AuditTest : public DaemonTest {
 protected:
  std::string AuditDir() const { return daemon_->dir() + "/state/audit"; }
  std::string Cli(const std::string& args) {
    return std::string(RAUHA_CLI_BIN) + " --socket " + daemon_->socket() + " " + args;
  }
  ShellRun Verify(const std::string& dir, const std::string& key = "") {
    return Sh(std::string(RAUHA_CLI_BIN) + " audit verify " +
              (key.empty() ? "" : "--key " + key + " ") + dir);
  }
  ShellRun PyVerify(const std::string& key, const std::string& dir) {
    std::string cmd =
        std::string("python3 ") + RAUHA_SOURCE_DIR + "/tests/integration/audit_verify.py " + key;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename();
      if (name.rfind("log-", 0) == 0) segments_.insert(entry.path());
    }
    for (const auto& s : segments_) cmd += " " + s;
    segments_.clear();
    return Sh(cmd);
  }
  // A copy of the audit dir to tamper with.
  std::string Copy(const std::string& name) {
    std::string to = daemon_->dir() + "/" + name;
    fs::remove_all(to);
    fs::copy(AuditDir(), to, fs::copy_options::recursive);
    return to;
  }
  std::set<std::string> segments_;
};

std::vector<std::string> Kinds(const std::string& dir) {
  std::vector<std::string> kinds;
  for (const auto& line : Lines(Slurp(dir + "/log-000000.ndjson"))) {
    auto r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_object()) kinds.push_back(r.value("kind", ""));
  }
  return kinds;
}

TEST_F(AuditTest, ZoneAndSandboxCommandsLeaveAChainThatVerifiesTwice) {
  ASSERT_TRUE(CreateZone("audited").ok());
  {
    grpc::ClientContext ctx;
    zv::PauseZoneRequest req;
    req.set_name("audited");
    zv::PauseZoneResponse resp;
    ASSERT_TRUE(daemon_->Zones()->PauseZone(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    zv::ResumeZoneRequest req;
    req.set_name("audited");
    zv::ResumeZoneResponse resp;
    ASSERT_TRUE(daemon_->Zones()->ResumeZone(&ctx, req, &resp).ok());
  }
  sb::RunSandboxRequest req;
  req.set_name("audited");
  auto result = Run({"/bin/sh", "-c", "echo audited"}, req);
  EXPECT_EQ(result.status(), "succeeded");
  EXPECT_FALSE(result.receipt().empty());
  {
    grpc::ClientContext ctx;
    zv::DeleteZoneRequest del;
    del.set_name("audited");
    zv::DeleteZoneResponse resp;
    ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
  }
  daemon_->Stop();

  std::vector<std::string> kinds = Kinds(AuditDir());
  for (const char* want : {"daemon.start", "zone.state", "zone.create", "task.start", "task.finish",
                           "zone.delete", "daemon.stop"}) {
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), want), kinds.end()) << want;
  }
  // Paused and resumed: both transitions recorded.
  std::string log = Slurp(AuditDir() + "/log-000000.ndjson");
  EXPECT_NE(log.find("\"state\":\"Paused\""), std::string::npos);

  ShellRun ours = Verify(AuditDir(), AuditDir() + "/key.pub");
  EXPECT_EQ(ours.exit_code, 0) << ours.out;
  EXPECT_NE(ours.out.find("intact"), std::string::npos) << ours.out;
  ShellRun theirs = PyVerify(AuditDir() + "/key.pub", AuditDir());
  EXPECT_EQ(theirs.exit_code, 0) << theirs.out;
  // Key files: 0600 private key, public key under keys/<id>.pub.
  EXPECT_EQ(fs::status(AuditDir() + "/signing.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(AuditTest, EachTamperingFailsVerifyAndNamesTheSpot) {
  for (int i = 0; i < 3; ++i) {
    auto r = Run({"/bin/true"});
    ASSERT_EQ(r.status(), "succeeded");
  }
  daemon_->Stop();
  std::string key = AuditDir() + "/key.pub";
  ASSERT_EQ(Verify(AuditDir(), key).exit_code, 0);
  std::vector<std::string> lines = Lines(Slurp(AuditDir() + "/log-000000.ndjson"));
  ASSERT_GE(lines.size(), 8u);

  auto expect_tampered = [&](const std::string& what, const std::string& text,
                             const std::string& spot) {
    std::string dir = Copy("tampered");
    Spit(dir + "/log-000000.ndjson", text);
    ShellRun r = Verify(dir, key);
    EXPECT_EQ(r.exit_code, 1) << what << ": " << r.out;
    EXPECT_NE(r.out.find(spot), std::string::npos) << what << ": " << r.out;
    ShellRun py = PyVerify(key, dir);
    EXPECT_EQ(py.exit_code, 1) << what << " (independent verifier): " << py.out;
  };
  // One byte flipped in line 4.
  std::vector<std::string> flipped = lines;
  flipped[3][flipped[3].find("\"time\":\"") + 10] ^= 1;
  expect_tampered("flipped byte", Join(flipped), "log-000000.ndjson:4:");
  // Line 3 deleted.
  std::vector<std::string> deleted = lines;
  deleted.erase(deleted.begin() + 2);
  expect_tampered("deleted line", Join(deleted), "log-000000.ndjson:3:");
  // Lines 5 and 6 swapped.
  std::vector<std::string> swapped = lines;
  std::swap(swapped[4], swapped[5]);
  expect_tampered("swapped lines", Join(swapped), "log-000000.ndjson:5:");
  // Truncated in the middle of the last line.
  std::string whole = Join(lines);
  expect_tampered("truncated mid-line", whole.substr(0, whole.size() - 20), "torn");
  // Whole records cut off the end: the signed head names the last one.
  std::vector<std::string> cut(lines.begin(), lines.end() - 2);
  {
    std::string dir = Copy("cut");
    Spit(dir + "/log-000000.ndjson", Join(cut));
    ShellRun r = Verify(dir, key);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("cut off"), std::string::npos) << r.out;
  }
  // A record re-signed by another key, chain links intact.
  {
    std::string dir = Copy("forged");
    std::string other = dir + "/other.key";
    ASSERT_EQ(Sh("openssl genpkey -algorithm ed25519 -out " + other).exit_code, 0);
    // Line 2 re-signed with the other key, its key_id changed to match.
    ShellRun forge = Sh(std::string("python3 ") + RAUHA_SOURCE_DIR +
                        "/tests/integration/audit_verify.py --resign " + other + " " + dir +
                        "/log-000000.ndjson 2");
    ASSERT_EQ(forge.exit_code, 0) << forge.out;
    ShellRun r = Verify(dir, key);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("log-000000.ndjson:2:"), std::string::npos) << r.out;
  }
  // Usage: a missing directory is exit 2.
  EXPECT_EQ(Verify(daemon_->dir() + "/nowhere", key).exit_code, 2);
}

TEST_F(AuditTest, ReceiptVerifiesAndAResultWithChangedStdoutDoesNot) {
  // stderr is not UTF-8: the receipt holds the digest of the exact bytes (stderr_base64).
  ShellRun r = Sh(Cli("sandbox -- /bin/sh -c 'echo receipt-me; printf \"\\377\" >&2'") + " > " +
                  daemon_->dir() + "/result.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::string result = daemon_->dir() + "/result.json";
  ASSERT_NE(Slurp(result).find("\"stderr_base64\""), std::string::npos) << Slurp(result);
  std::string key = AuditDir() + "/key.pub";
  ShellRun ok =
      Sh(std::string(RAUHA_CLI_BIN) + " audit verify --receipt " + result + " --key " + key);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << Slurp(result);
  ShellRun py = Sh(std::string("python3 ") + RAUHA_SOURCE_DIR +
                   "/tests/integration/audit_verify.py --receipt " + key + " " + result);
  EXPECT_EQ(py.exit_code, 0) << py.out;

  auto j = nlohmann::json::parse(Slurp(result));
  j["stdout"] = "receipt-me, changed\n";
  std::string changed = daemon_->dir() + "/changed.json";
  Spit(changed, j.dump());
  ShellRun bad =
      Sh(std::string(RAUHA_CLI_BIN) + " audit verify --receipt " + changed + " --key " + key);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("stdout"), std::string::npos) << bad.out;
  ShellRun py_bad = Sh(std::string("python3 ") + RAUHA_SOURCE_DIR +
                       "/tests/integration/audit_verify.py --receipt " + key + " " + changed);
  EXPECT_EQ(py_bad.exit_code, 1) << py_bad.out;
}

TEST_F(AuditTest, KillNineDuringASandboxBurstLeavesAChainThatVerifies) {
  std::atomic<int> done{0};
  std::atomic<int> clients_ended{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        sb::RunSandboxRequest req;
        req.add_command("/bin/true");
        sb::SandboxResult res;
        if (!daemon_->Sandbox()->RunSandbox(&ctx, req, &res).ok()) break;
        ++done;
      }
      ++clients_ended;
    });
  }
  // Kill in mid-burst; if every client ended (failed) first, say so rather than wait forever.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (done < 6 && clients_ended < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  int done_before_kill = done;
  daemon_->Kill9();
  for (auto& t : clients) t.join();
  EXPECT_GE(done_before_kill, 6) << "the burst did not get going before the kill";
  daemon_->Start();  // recovery cleans the temporary zones; its records join the chain
  daemon_->Stop();
  ShellRun r = Verify(AuditDir(), AuditDir() + "/key.pub");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(PyVerify(AuditDir() + "/key.pub", AuditDir()).exit_code, 0);
  // Two daemon.start records, one daemon.stop (the killed daemon wrote none).
  std::vector<std::string> kinds = Kinds(AuditDir());
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "daemon.start"), 2);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "daemon.stop"), 1);
}

TEST_F(AuditTest, RotationIsTrustedFromTheFirstKey) {
  std::string first = daemon_->dir() + "/first.pub";
  ASSERT_EQ(Sh(Cli("audit key") + " > " + first).exit_code, 0);
  ShellRun rot = Sh(Cli("audit rotate"));
  ASSERT_EQ(rot.exit_code, 0) << rot.out;
  auto r = Run({"/bin/true"});
  EXPECT_EQ(r.status(), "succeeded");
  std::string second = daemon_->dir() + "/second.pub";
  ASSERT_EQ(Sh(Cli("audit key") + " > " + second).exit_code, 0);
  EXPECT_NE(Slurp(first), Slurp(second));
  EXPECT_TRUE(fs::exists(AuditDir() + "/keys"));
  daemon_->Stop();

  ShellRun ok = Verify(AuditDir(), first);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("key rotated"), std::string::npos) << ok.out;
  EXPECT_EQ(PyVerify(first, AuditDir()).exit_code, 0);
  // The new key alone does not verify the chain's start.
  EXPECT_EQ(Verify(AuditDir(), second).exit_code, 1);
  // rauhad restarts with the rotated key and the chain runs on.
  daemon_->Start();
  daemon_->Stop();
  EXPECT_EQ(Verify(AuditDir(), first).exit_code, 0);
}

}  // namespace
}  // namespace rauha::testing
