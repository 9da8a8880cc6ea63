// `rauha run` in the foreground over rauhad's ttrpc endpoint (rauha-cli/run_call.h,
// rauhad/server/container_ttrpc.h): RunContainer's stream as data frames, without a gRPC
// client in the CLI, and its fallback to gRPC. What a user sees must not depend on the path:
// the same output (live, stdout and stderr apart), exit codes, error lines and signals.
//
// A socket path whose ".ttrpc" twin is rauhad's endpoint and which has no gRPC socket can only
// be reached by the fast path; RAUHA_NO_FAST_PATH=1 makes the CLI use gRPC.
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "rauha-common/shim_endpoint_path.h"
#include "tests/integration/cli_runner.h"
#include "tests/integration/container_fixture.h"
#include "tests/integration/fast_path_sockets.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kNoFastPath = {"RAUHA_NO_FAST_PATH=1"};

class ContainerRunFastPathTest : public ContainerTest {
 protected:
  std::string Alt() {
    const std::string alt = daemon_->dir() + "/alt";
    fs::create_directories(alt);
    return alt;
  }
  std::string TtrpcOnlySocket() {
    return ::rauha::testing::TtrpcOnlySocket(daemon_->socket(), Alt());
  }
  std::string GrpcOnlySocket() {
    return ::rauha::testing::GrpcOnlySocket(daemon_->socket(), Alt());
  }

  // `rauha --socket SOCKET args...` started (stdout, stderr to files); FinishRun collects it.
  pid_t StartRun(const std::string& socket, std::vector<std::string> args,
                 const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), {RAUHA_CLI_BIN, "--socket", socket});
    return ::rauha::testing::SpawnCli(std::move(args), OutPath(), ErrPath(), env,
                                      {"RAUHA_NO_FAST_PATH="});
  }
  CliRun FinishRun(pid_t pid) { return FinishCli(pid, OutPath(), ErrPath()); }
  CliRun Run(const std::string& socket, std::vector<std::string> args,
             const std::vector<std::string>& env = {}) {
    return FinishRun(StartRun(socket, std::move(args), env));
  }
  std::string OutPath() const { return daemon_->dir() + "/run.out"; }
  std::string ErrPath() const { return daemon_->dir() + "/run.err"; }

  // Polls (a condition with a deadline) until the running CLI printed `text` on stdout.
  bool WaitForOutput(const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Slurp(OutPath()).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::vector<cpb::ContainerInfo> Containers() {
    grpc::ClientContext ctx;
    cpb::ListContainersResponse all;
    EXPECT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
    return {all.containers().begin(), all.containers().end()};
  }
};

// run --rm over the endpoint alone: all of the output (200000 bytes, more than the shim keeps
// for a late reader), stdout and stderr apart, the container's exit code, and the container
// gone when the CLI exits; the same over gRPC. On the old CLI (gRPC only) the ttrpc-only socket
// is unreachable: exit 125.
TEST_F(ContainerRunFastPathTest, RunRmOverTheEndpointPrintsWhatGrpcPrints) {
  const std::vector<std::string> args = {
      "run",
      "--rm",
      image_,
      "/bin/busybox",
      "sh",
      "-c",
      "echo to-err >&2; /bin/busybox head -c 200000 /dev/zero | /bin/busybox tr '\\0' a; echo; "
      "echo last; exit 3"};
  CliRun fast = Run(TtrpcOnlySocket(), args);
  EXPECT_EQ(fast.exit_code, 3) << fast.err;
  EXPECT_EQ(fast.out, std::string(200000, 'a') + "\nlast\n");
  EXPECT_EQ(fast.err, "to-err\n");
  EXPECT_TRUE(Containers().empty());
  EXPECT_EQ(ZoneCount(), 0);

  CliRun grpc = Run(daemon_->socket(), args, kNoFastPath);
  EXPECT_EQ(grpc.exit_code, 3) << grpc.err;
  EXPECT_EQ(grpc.out, fast.out);
  EXPECT_EQ(grpc.err, fast.err);
  EXPECT_TRUE(Containers().empty());

  // RAUHA_NO_FAST_PATH=1 is obeyed: the ttrpc-only socket is then unreachable.
  CliRun unreachable = Run(TtrpcOnlySocket(), args, kNoFastPath);
  EXPECT_EQ(unreachable.exit_code, 125);
  EXPECT_NE(unreachable.err.find("cannot reach rauhad at " + TtrpcOnlySocket()), std::string::npos)
      << unreachable.err;
  EXPECT_TRUE(Containers().empty());
}

// The output comes as the container writes it (it is still running when its first line is
// there), and a stop of the container ends the run with its code (SIGTERM: 143).
TEST_F(ContainerRunFastPathTest, OutputIsLiveOverTheEndpoint) {
  pid_t cli = StartRun(TtrpcOnlySocket(), {"run", "--rm", image_, "/bin/busybox", "sh", "-c",
                                           "echo ready; exec /bin/busybox sleep 1000"});
  ASSERT_TRUE(WaitForOutput("ready\n")) << Slurp(ErrPath());
  auto running = Containers();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].state(), "Running");
  const std::string id = running[0].id();
  ASSERT_TRUE(Stop(id, 5).ok());
  CliRun r = FinishRun(cli);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.err;
  EXPECT_EQ(r.out, "ready\n");
  EXPECT_EQ(r.err, "");
  ExpectGone(id);
}

// --sig-proxy on the fast path: the CLI's SIGTERM goes to the container (over the endpoint:
// the ttrpc-only socket has no gRPC), whose trap decides the exit code.
TEST_F(ContainerRunFastPathTest, SignalsGoToTheContainerOverTheEndpoint) {
  pid_t cli = StartRun(TtrpcOnlySocket(), {"run", "--rm", image_, "/bin/busybox", "sh", "-c",
                                           "trap 'echo got-term; exit 5' TERM; echo ready; "
                                           "while :; do /bin/busybox sleep 0.1; done"});
  ASSERT_TRUE(WaitForOutput("ready\n")) << Slurp(ErrPath());
  ASSERT_EQ(::kill(cli, SIGTERM), 0);
  CliRun r = FinishRun(cli);
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(r.out, "ready\ngot-term\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(Containers().empty());
}

// What rauhad refuses reads the same on either path: one "rauha: ..." line, exit 125, and
// nothing created.
TEST_F(ContainerRunFastPathTest, RefusalsReadTheSameOnEitherPath) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", "--rm", registry_->host() + "/test/nope:v1", "true"},
        std::vector<std::string>{"run", "--name", "no/slashes", image_, "true"},
        std::vector<std::string>{"run", "--zone", "no-such-zone", image_, "true"}}) {
    CliRun fast = Run(TtrpcOnlySocket(), args);
    CliRun grpc = Run(daemon_->socket(), args, kNoFastPath);
    EXPECT_EQ(fast.exit_code, 125) << fast.err;
    EXPECT_EQ(grpc.exit_code, 125) << grpc.err;
    EXPECT_TRUE(fast.err.starts_with("rauha: ")) << fast.err;
    EXPECT_EQ(fast.err, grpc.err);
    EXPECT_TRUE(fast.out.empty()) << fast.out;
  }
  EXPECT_TRUE(Containers().empty());
  EXPECT_EQ(ZoneCount(), 0);
}

// Without the endpoint, or with one that does not serve RunContainer (an older rauhad's:
// Unimplemented, nothing ran), the run goes over gRPC and the user sees only its output.
TEST_F(ContainerRunFastPathTest, FallsBackToGrpcWhereTheEndpointLacksRunContainer) {
  const std::string socket = GrpcOnlySocket();
  const std::vector<std::string> args = {
      "run", "--rm", image_, "/bin/busybox", "sh", "-c", "echo via-grpc; exit 4"};
  CliRun no_endpoint = Run(socket, args);
  EXPECT_EQ(no_endpoint.exit_code, 4) << no_endpoint.err;
  EXPECT_EQ(no_endpoint.out, "via-grpc\n");
  EXPECT_EQ(no_endpoint.err, "");

  ttrpc::Server older;
  older.Register("rauha.sandbox.v1.SandboxService", "RunSandbox",
                 [](const ttrpc::CallContext&, const std::string&) {
                   return absl::StatusOr<std::string>(absl::InternalError("not for run"));
                 });
  auto listener = ttrpc::ListenUnix(ShimEndpointPath(socket));
  ASSERT_TRUE(listener.ok()) << listener.status();
  older.Serve(*std::move(listener));
  CliRun unimplemented = Run(socket, args);
  older.Shutdown();
  ::unlink(ShimEndpointPath(socket).c_str());
  EXPECT_EQ(unimplemented.exit_code, 4) << unimplemented.err;
  EXPECT_EQ(unimplemented.out, "via-grpc\n");
  EXPECT_EQ(unimplemented.err, "");
  EXPECT_TRUE(Containers().empty());
}

// The endpoint's side: a request with bytes that are not UTF-8 is INVALID_ARGUMENT naming the
// field, an undecodable one INVALID_ARGUMENT, and neither creates anything; a client that
// closes its connection leaves the container running (removed at its exit), as over gRPC.
TEST_F(ContainerRunFastPathTest, EndpointRefusesBadRequestsAndOutlivesItsClient) {
  const std::string endpoint = ShimEndpointPath(daemon_->socket());
  auto call = [&](const std::string& payload, std::string* seen) {
    auto fd = ttrpc::ConnectUnix(endpoint);
    EXPECT_TRUE(fd.ok()) << fd.status();
    return ttrpc::StreamingCallOnConnection(fd->get(), "rauha.container.v1.ContainerService",
                                            "RunContainer", payload, [&](std::string_view data) {
                                              *seen += std::string(data);
                                              return absl::OkStatus();
                                            });
  };
  cpb::RunContainerRequest bad_utf8;
  bad_utf8.mutable_create()->set_image(image_);
  bad_utf8.mutable_create()->add_command("/bin/true");
  bad_utf8.mutable_create()->set_name("ok");
  std::string payload = bad_utf8.SerializeAsString();
  const size_t at = payload.find("ok");
  ASSERT_NE(at, std::string::npos);
  payload[at] = '\xff';
  std::string seen;
  absl::Status s = call(payload, &seen);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("create.name"), std::string_view::npos) << s;
  s = call(std::string("\x0a\xff\xff\xff", 4), &seen);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(Containers().empty());

  // Reads until the container said it is ready, then closes.
  cpb::RunContainerRequest req;
  req.mutable_create()->set_image(image_);
  req.mutable_create()->set_auto_remove(true);
  for (const char* word : {"/bin/busybox", "sh", "-c", "echo ready; exec /bin/busybox sleep 1000"})
    req.mutable_create()->add_command(word);
  auto fd = ttrpc::ConnectUnix(endpoint);
  ASSERT_TRUE(fd.ok()) << fd.status();
  std::string out;
  s = ttrpc::StreamingCallOnConnection(
      fd->get(), "rauha.container.v1.ContainerService", "RunContainer", req.SerializeAsString(),
      [&](std::string_view data) {
        cpb::RunContainerResponse m;
        EXPECT_TRUE(m.ParseFromArray(data.data(), static_cast<int>(data.size())));
        out += m.stdout_data();
        return out == "ready\n" ? absl::CancelledError("enough") : absl::OkStatus();
      });
  ASSERT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  fd->reset();
  auto running = Containers();
  ASSERT_EQ(running.size(), 1u);
  cpb::ContainerInfo info = WaitForState(running[0].id(), "Running");
  EXPECT_TRUE(info.auto_remove());
  ASSERT_TRUE(Stop(info.id(), 5).ok());
  WaitGone(info.id());
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
