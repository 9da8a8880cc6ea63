// How the CLI finds and reaches rauhad, and the errors a user sees when it cannot.
#include "rauha-cli/client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "rauha-common/fd.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace rauha::cli {
namespace {

TEST(CliRpcErrorTest, PrefixesTheCodeNameInLowerCase) {
  EXPECT_EQ(
      DescribeRpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "zone \"x\" does not exist")),
      "not found: zone \"x\" does not exist");
  EXPECT_EQ(DescribeRpcError(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "zone has tasks")),
            "failed precondition: zone has tasks");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "invalid argument");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::ALREADY_EXISTS), "already exists");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "resource exhausted");
}

TEST(CliSocketTest, FlagThenEnvironmentThenDefault) {
  const char* saved = std::getenv("RAUHA_SOCKET");
  std::string saved_value = saved ? saved : "";
  setenv("RAUHA_SOCKET", "/tmp/from-env.sock", 1);
  EXPECT_EQ(ResolveSocketPath("/tmp/flag.sock"), "/tmp/flag.sock");
  EXPECT_EQ(ResolveSocketPath(""), "/tmp/from-env.sock");
  unsetenv("RAUHA_SOCKET");
  EXPECT_EQ(ResolveSocketPath(""), "/run/rauha/rauhad.sock");
  if (saved) setenv("RAUHA_SOCKET", saved_value.c_str(), 1);
}

class CliConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-cli-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/rauhad.sock";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    EXPECT_FALSE(std::filesystem::exists(dir_));
  }
  std::string dir_;
  std::string socket_;
};

TEST_F(CliConnectTest, MissingSocketSaysHowToStartTheDaemon) {
  auto start = std::chrono::steady_clock::now();
  auto channel = Connect({.socket = socket_, .connect_timeout_s = 5});
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().message(),
            "cannot reach rauhad at " + socket_ + ": is it running? (start it with: rauhad)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(CliConnectTest, StaleSocketFailsFast) {
  // A socket file left by a daemon that is gone: bound, nobody listening.
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_.c_str());
  ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  fd.reset();

  auto start = std::chrono::steady_clock::now();
  auto channel = Connect({.socket = socket_, .connect_timeout_s = 5});
  ASSERT_FALSE(channel.ok());
  EXPECT_NE(channel.status().message().find("cannot reach rauhad at " + socket_),
            absl::string_view::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(CliConnectTest, ConnectsToAListeningServer) {
  rauha::zone::v1::ZoneService::Service zones;  // every call UNIMPLEMENTED; enough to connect
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
  builder.RegisterService(&zones);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto channel = Connect({.socket = socket_, .connect_timeout_s = 5});
  EXPECT_TRUE(channel.ok()) << channel.status();
  server->Shutdown();
}

TEST_F(CliConnectTest, NotASocketIsNamed) {
  socket_ = dir_;  // a directory
  auto channel = Connect({.socket = socket_, .connect_timeout_s = 5});
  ASSERT_FALSE(channel.ok());
  EXPECT_NE(channel.status().message().find("not a socket"), absl::string_view::npos);
}

}  // namespace
}  // namespace rauha::cli
