// `rauha sandbox`'s fast path (rauha-cli/sandbox_call.h): RunSandbox over rauhad's ttrpc
// endpoint, without a gRPC client in the CLI, and its fallback to gRPC. What a user sees must
// not depend on the path taken: the same JSON, exit codes and error lines.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "nlohmann/json.hpp"
#include "rauha-common/shim_endpoint_path.h"
#include "tests/integration/cli_runner.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/fast_path_sockets.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

class CliFastPathTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    alt_ = daemon_->dir() + "/alt";
    fs::create_directories(alt_);
  }

  // `rauha --socket SOCKET args...` with `env` added to this process's environment.
  CliRun Cli(const std::string& socket, std::vector<std::string> args,
             const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), {RAUHA_CLI_BIN, "--socket", socket});
    const std::string out_path = daemon_->dir() + "/fast.out";
    const std::string err_path = daemon_->dir() + "/fast.err";
    pid_t pid = SpawnCli(std::move(args), out_path, err_path, env, {"RAUHA_NO_FAST_PATH="});
    return FinishCli(pid, out_path, err_path);
  }

  std::string TtrpcOnlySocket() {
    return ::rauha::testing::TtrpcOnlySocket(daemon_->socket(), alt_);
  }
  std::string GrpcOnlySocket() { return ::rauha::testing::GrpcOnlySocket(daemon_->socket(), alt_); }

  // The result without what differs between any two runs (ids, times, resource use, the
  // receipt's signature); events by kind.
  static nlohmann::json Comparable(const std::string& out) {
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_object()) return j;
    for (const char* key : {"task_id", "zone_id", "zone_name", "duration_ms", "started_at",
                            "finished_at", "resources", "receipt"}) {
      EXPECT_TRUE(j.contains(key)) << key;
      j.erase(key);
    }
    nlohmann::json kinds = nlohmann::json::array();
    for (const auto& e : j["events"]) kinds.push_back(e["kind"]);
    j["events"] = kinds;
    return j;
  }

  std::string alt_;
};

const std::vector<std::string> kNoFastPath = {"RAUHA_NO_FAST_PATH=1"};

// The same command over each path: the same JSON (but ids and times), the same exit code.
// Over the ttrpc-only socket the call can only have taken the fast path, and over gRPC
// (RAUHA_NO_FAST_PATH=1) that socket does not answer: the switch works.
TEST_F(CliFastPathTest, FastPathAndGrpcPrintTheSameResult) {
  const std::string repo = daemon_->dir() + "/repo";
  fs::create_directories(repo);
  std::ofstream(repo + "/in.txt") << "from the repo\n";
  const std::vector<std::string> args = {
      "sandbox",
      "--repo-path",
      repo,
      "-e",
      "GREETING=hi",
      "--",
      "/bin/sh",
      "-c",
      "cat /workspace/in.txt; echo \"$GREETING\" >&2; printf '\\377'; exit 3"};

  CliRun fast = Cli(TtrpcOnlySocket(), args);
  CliRun grpc = Cli(daemon_->socket(), args, kNoFastPath);
  EXPECT_EQ(fast.exit_code, 3) << fast.err;
  EXPECT_EQ(grpc.exit_code, 3) << grpc.err;
  EXPECT_EQ(fast.err, grpc.err);
  auto fast_json = Comparable(fast.out);
  ASSERT_TRUE(fast_json.is_object()) << fast.out;
  EXPECT_EQ(fast_json["status"], "failed");
  EXPECT_EQ(fast_json["stderr"], "hi\n");
  EXPECT_TRUE(fast_json.contains("stdout_base64")) << fast.out;
  EXPECT_EQ(fast_json, Comparable(grpc.out));

  CliRun unreachable = Cli(TtrpcOnlySocket(), args, kNoFastPath);
  EXPECT_EQ(unreachable.exit_code, 125);
  EXPECT_NE(unreachable.err.find("cannot reach rauhad at " + alt_ + "/ttrpc-only.sock"),
            std::string::npos)
      << unreachable.err;
}

// What rauhad refuses reads the same on either path: one "rauha: ..." line, exit 125, no JSON.
TEST_F(CliFastPathTest, RefusalsReadTheSameOnEitherPath) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"sandbox", "--image", "nosuch.invalid/none:1", "--pull", "never",
                                 "--", "/bin/true"},
        std::vector<std::string>{"sandbox", "--name", "../etc", "--", "/bin/true"}}) {
    CliRun fast = Cli(TtrpcOnlySocket(), args);
    CliRun grpc = Cli(daemon_->socket(), args, kNoFastPath);
    EXPECT_EQ(fast.exit_code, 125) << fast.err;
    EXPECT_EQ(grpc.exit_code, 125) << grpc.err;
    EXPECT_TRUE(fast.err.starts_with("rauha: ")) << fast.err;
    EXPECT_EQ(fast.err, grpc.err);
    EXPECT_TRUE(fast.out.empty()) << fast.out;
    EXPECT_TRUE(grpc.out.empty()) << grpc.out;
  }
  CliRun missing = Cli(TtrpcOnlySocket(), {"sandbox", "--image", "nosuch.invalid/none:1", "--pull",
                                           "never", "--", "/bin/true"});
  EXPECT_NE(missing.err.find("rauha: not found: "), std::string::npos) << missing.err;
  // Nothing was made for a refused call.
  rauha::zone::v1::ListZonesResponse zones;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0);
}

// Without the endpoint (an rauhad from before it), or with an endpoint that does not serve
// RunSandbox (one from before this change: Unimplemented, nothing ran), the CLI makes the call
// over gRPC, and the user sees only the result.
TEST_F(CliFastPathTest, FallsBackToGrpcWhereTheFastPathIsMissing) {
  const std::string socket = GrpcOnlySocket();
  CliRun no_endpoint = Cli(socket, {"sandbox", "--", "/bin/sh", "-c", "echo via-grpc"});
  EXPECT_EQ(no_endpoint.exit_code, 0) << no_endpoint.err;
  EXPECT_TRUE(no_endpoint.err.empty()) << no_endpoint.err;
  auto j = nlohmann::json::parse(no_endpoint.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << no_endpoint.out;
  EXPECT_EQ(j["stdout"], "via-grpc\n");

  // An endpoint of an older rauhad: the shim's methods only.
  ttrpc::Server older;
  older.Register("rauha.zone.v1.ZoneService", "GetPolicy",
                 [](const ttrpc::CallContext&, const std::string&) {
                   return absl::StatusOr<std::string>(absl::NotFoundError("no zone"));
                 });
  auto listener = ttrpc::ListenUnix(ShimEndpointPath(socket));
  ASSERT_TRUE(listener.ok()) << listener.status();
  older.Serve(*std::move(listener));
  CliRun unimplemented = Cli(socket, {"sandbox", "--", "/bin/sh", "-c", "echo again"});
  older.Shutdown();
  ::unlink(ShimEndpointPath(socket).c_str());
  EXPECT_EQ(unimplemented.exit_code, 0) << unimplemented.err;
  EXPECT_TRUE(unimplemented.err.empty()) << unimplemented.err;
  j = nlohmann::json::parse(unimplemented.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << unimplemented.out;
  EXPECT_EQ(j["stdout"], "again\n");
}

}  // namespace
}  // namespace rauha::testing
