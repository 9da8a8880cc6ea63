// rauhad's ttrpc endpoint for containerd-shim-rauha-v2 (rauhad/server/shim_endpoint.h) against
// a real rauhad: the zone and process calls act on the same zones the gRPC API shows, bad
// requests get the gRPC API's codes, only the shim's methods (and RunSandbox, the CLI's fast
// path) are served, and the socket serves root only (mode 0600, and a non-root peer that
// reaches it is closed without an answer).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "rauha-common/api_metadata.h"
#include "rauha-common/shim_endpoint_path.h"
#include "rauha/v1/process.pb.h"
#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauha/v1/zone.pb.h"
#include "tests/integration/daemon_fixture.h"
#include "ttrpc.pb.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;
namespace zpb = rauha::zone::v1;
namespace ppb = rauha::process::v1;
namespace spb = rauha::sandbox::v1;

constexpr char kZones[] = "rauha.zone.v1.ZoneService";
constexpr char kProcesses[] = "rauha.process.v1.ProcessService";
constexpr char kSandboxes[] = "rauha.sandbox.v1.SandboxService";

class ShimEndpointTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    path_ = ShimEndpointPath(daemon_->socket());
    auto client = ttrpc::Client::Connect(path_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override {
    client_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
    DaemonTest::TearDown();
  }
  absl::StatusCode GrpcZoneCode(const std::string& name) {
    grpc::ClientContext ctx;
    zpb::GetZoneRequest req;
    req.set_name(name);
    zpb::GetZoneResponse resp;
    return static_cast<absl::StatusCode>(daemon_->Zones()->GetZone(&ctx, req, &resp).error_code());
  }

  std::string path_;
  std::string dir_;
  std::unique_ptr<ttrpc::Client> client_;
};

TEST_F(ShimEndpointTest, ZoneCallsActOnTheZonesTheGrpcApiShows) {
  zpb::CreateZoneRequest create;
  create.set_name("podt");
  auto created =
      client_->CallMethod<zpb::CreateZoneResponse>(kZones, "CreateZone", create, absl::Seconds(60));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->name(), "podt");
  EXPECT_EQ(GrpcZoneCode("podt"), absl::StatusCode::kOk);
  // The same zone again: AlreadyExists, as over gRPC.
  EXPECT_EQ(
      client_->CallMethod<zpb::CreateZoneResponse>(kZones, "CreateZone", create).status().code(),
      absl::StatusCode::kAlreadyExists);

  zpb::ZoneStatsRequest stats;
  stats.set_zone_name("podt");
  auto s = client_->CallMethod<zpb::ZoneStatsResponse>(kZones, "ZoneStats", stats);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->zone_id(), created->zone_id());
  EXPECT_GT(s->memory_limit_bytes(), 0u);

  zpb::DeleteZoneRequest del;
  del.set_name("podt");
  del.set_force(true);
  auto deleted =
      client_->CallMethod<zpb::DeleteZoneResponse>(kZones, "DeleteZone", del, absl::Seconds(60));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(GrpcZoneCode("podt"), absl::StatusCode::kNotFound);
}

TEST_F(ShimEndpointTest, ProcessCallsRunAProcessInTheZone) {
  ASSERT_TRUE(CreateZone("podp").ok());
  char tmpl[] = "/tmp/rauha-shimep-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  fs::create_directories(dir_ + "/rootfs/bin");
  fs::copy_file("/bin/busybox", dir_ + "/rootfs/bin/busybox");
  ppb::StartProcessRequest start;
  start.set_zone_name("podp");
  start.set_process_id("p1");
  start.set_rootfs(dir_ + "/rootfs");
  for (const char* a : {"/bin/busybox", "sh", "-c", "echo over-ttrpc; exit 7"}) start.add_args(a);
  start.add_env("PATH=/bin");
  std::ofstream(dir_ + "/out");  // stdio paths must exist (containerd's FIFOs do)
  start.set_stdout_path(dir_ + "/out");
  auto started = client_->CallMethod<ppb::StartProcessResponse>(kProcesses, "StartProcess", start,
                                                                absl::Seconds(60));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_GT(started->pid(), 0u);
  ppb::WaitProcessRequest wait;
  wait.set_process_id("p1");
  auto end = client_->CallMethod<ppb::WaitProcessResponse>(kProcesses, "WaitProcess", wait,
                                                           absl::Seconds(60));
  ASSERT_TRUE(end.ok()) << end.status();
  ASSERT_TRUE(end->has_exit_code());
  EXPECT_EQ(end->exit_code(), 7);
  std::ifstream in(dir_ + "/out");
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_EQ(out.str(), "over-ttrpc\n");
  // Ended: a kill is refused as over gRPC; the delete forgets it.
  ppb::KillProcessRequest kill;
  kill.set_process_id("p1");
  kill.set_signal(SIGKILL);
  EXPECT_EQ(client_->CallMethod<ppb::KillProcessResponse>(kProcesses, "KillProcess", kill)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  ppb::DeleteProcessRequest del;
  del.set_process_id("p1");
  ASSERT_TRUE(
      client_->CallMethod<ppb::DeleteProcessResponse>(kProcesses, "DeleteProcess", del).ok());
  EXPECT_EQ(client_->CallMethod<ppb::DeleteProcessResponse>(kProcesses, "DeleteProcess", del)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ShimEndpointTest, BadRequestsGetTheGrpcApisCodesAndOnlyTheShimsMethodsAreServed) {
  zpb::DeleteZoneRequest bad_name;
  bad_name.set_name("../etc");
  EXPECT_EQ(
      client_->CallMethod<zpb::DeleteZoneResponse>(kZones, "DeleteZone", bad_name).status().code(),
      absl::StatusCode::kInvalidArgument);
  zpb::GetPolicyRequest unknown;
  unknown.set_zone_name("nosuchzone");
  EXPECT_EQ(
      client_->CallMethod<zpb::GetPolicyResponse>(kZones, "GetPolicy", unknown).status().code(),
      absl::StatusCode::kNotFound);
  ppb::WaitProcessRequest wait;
  wait.set_process_id("nosuchprocess");
  EXPECT_EQ(client_->CallMethod<ppb::WaitProcessResponse>(kProcesses, "WaitProcess", wait)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  // Not the shim's: the public API's other methods are gRPC only.
  zpb::ListZonesRequest list;
  EXPECT_EQ(client_->CallMethod<zpb::ListZonesResponse>(kZones, "ListZones", list).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client_->Call("rauha.sandbox.v1.SandboxService", "WaitTask", "").status().code(),
            absl::StatusCode::kUnimplemented);
  // Undecodable request bytes.
  EXPECT_EQ(client_->Call(kZones, "CreateZone", std::string("\xff\xff\xff", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// RunSandbox over ttrpc (the CLI's fast path) is the gRPC call: it runs the task, names it
// ahead of the answer (as gRPC's initial metadata does), and refuses what gRPC refuses with the
// same code and message: a request gRPC's size limit rejects, a string field that is not
// UTF-8, a request TaskRunner's checks reject. On the old main RunSandbox was Unimplemented
// here.
TEST_F(ShimEndpointTest, RunSandboxIsTheGrpcCall) {
  constexpr uint32_t kLarge = 64u << 20;  // kMaxRunSandboxResponse
  auto client = ttrpc::Client::Connect(path_, kLarge);
  ASSERT_TRUE(client.ok()) << client.status();
  spb::RunSandboxRequest req;
  for (const char* word : {"/bin/sh", "-c", "echo out; echo err >&2; exit 4"}) {
    req.add_command(word);
  }
  ttrpc::InitialMetadata md;
  auto answer = (*client)->Call(kSandboxes, "RunSandbox", req.SerializeAsString(),
                                absl::InfiniteDuration(), {}, nullptr, &md);
  ASSERT_TRUE(answer.ok()) << answer.status();
  spb::SandboxResult result;
  ASSERT_TRUE(result.ParseFromString(*answer));
  EXPECT_EQ(result.status(), "failed");
  EXPECT_EQ(result.exit_code(), 4);
  EXPECT_EQ(result.stdout(), "out\n");
  EXPECT_EQ(result.stderr(), "err\n");
  EXPECT_FALSE(result.receipt().empty());
  ASSERT_EQ(md.size(), 1u);
  EXPECT_EQ(md[0].first, kTaskIdMetadataKey);
  EXPECT_EQ(md[0].second, result.task_id());
  // The temporary zone is gone, as after the gRPC call.
  zpb::ListZonesResponse zones;
  grpc::ClientContext list_ctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&list_ctx, {}, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0);

  // Each refusal: the same code and message as the gRPC call's, and nothing ran.
  auto same_as_grpc = [&](const spb::RunSandboxRequest& bad, const std::string& bytes,
                          absl::StatusCode code) {
    auto over_ttrpc = (*client)->Call(kSandboxes, "RunSandbox", bytes);
    EXPECT_EQ(over_ttrpc.status().code(), code) << over_ttrpc.status();
    grpc::ClientContext ctx;
    spb::SandboxResult ignored;
    grpc::Status over_grpc = daemon_->Sandbox()->RunSandbox(&ctx, bad, &ignored);
    EXPECT_EQ(static_cast<int>(over_grpc.error_code()), static_cast<int>(code));
    EXPECT_EQ(over_ttrpc.status().message(), over_grpc.error_message());
  };
  spb::RunSandboxRequest empty;  // no command, no image
  same_as_grpc(empty, empty.SerializeAsString(), absl::StatusCode::kInvalidArgument);
  spb::RunSandboxRequest no_image;  // an image rauhad does not hold
  no_image.add_command("/bin/true");
  no_image.set_image("nosuch.invalid/none:1");
  same_as_grpc(no_image, no_image.SerializeAsString(), absl::StatusCode::kNotFound);
  spb::RunSandboxRequest bad_name;
  bad_name.add_command("/bin/true");
  bad_name.set_name("../etc");
  same_as_grpc(bad_name, bad_name.SerializeAsString(), absl::StatusCode::kInvalidArgument);
  spb::RunSandboxRequest not_utf8;
  not_utf8.add_command("/bin/true");
  not_utf8.set_workdir(std::string("/w\xff", 3));
  // Serialized as raw bytes: protobuf would log its complaint about the field on the way out.
  spb::RunSandboxRequest carrier;
  carrier.add_command("/bin/true");
  std::string bytes = carrier.SerializeAsString();
  bytes += std::string("\x2a\x03/w\xff", 5);  // field 5 (workdir), length 3
  ASSERT_EQ(spb::RunSandboxRequest::descriptor()->FindFieldByNumber(5)->name(), "workdir");
  same_as_grpc(not_utf8, bytes, absl::StatusCode::kInvalidArgument);
  spb::RunSandboxRequest too_big;
  too_big.add_command("/bin/true");
  too_big.set_stdin_data(std::string((3 << 20) + 1, 'x'));
  same_as_grpc(too_big, too_big.SerializeAsString(), absl::StatusCode::kResourceExhausted);

  grpc::ClientContext after_ctx;
  zpb::ListZonesResponse after;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&after_ctx, {}, &after).ok());
  EXPECT_EQ(after.zones_size(), 0) << "a refused call made no zone";
}

// What a process of another user gets: the socket is 0600 and root's; opened up to it (the
// test changes the modes), the connection is closed without an answer (SO_PEERCRED).
TEST_F(ShimEndpointTest, OnlyRootIsServed) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);

  const std::string dir = fs::path(path_).parent_path();
  struct stat dir_st {};
  ASSERT_EQ(::stat(dir.c_str(), &dir_st), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0711), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  ::ttrpc::Request request;
  request.set_service(kZones);
  request.set_method("DeleteZone");
  auto frame = ttrpc::EncodeFrame(1, ttrpc::MessageType::kRequest, 0, request.SerializeAsString());
  ASSERT_TRUE(frame.ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // 0: refused without an answer; 1-9: could not even try; 10: answered (the failure).
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
    auto fd = ttrpc::ConnectUnix(path_);
    if (!fd.ok()) _exit(3);
    if (!ttrpc::WriteAll(fd->get(), *frame).ok()) _exit(0);  // already closed
    char buf[64];
    ssize_t n;
    do {
      n = ::recv(fd->get(), buf, sizeof(buf), 0);
    } while (n < 0 && errno == EINTR);
    _exit(n > 0 ? 10 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::chmod(path_.c_str(), 0600);
  ::chmod(dir.c_str(), dir_st.st_mode & 07777);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "0: refused, 10: a non-root peer got an answer";
  // Root still is.
  zpb::GetPolicyRequest req;
  req.set_zone_name("nosuchzone");
  EXPECT_EQ(client_->CallMethod<zpb::GetPolicyResponse>(kZones, "GetPolicy", req).status().code(),
            absl::StatusCode::kNotFound);
}

// The CLI's pattern against a real rauhad: a connection per RunSandbox call. The endpoint keeps
// the threads that serve these and reuses them (ttrpc/server.h): after many calls rauhad has
// no more threads than before them, by the kernel's count, but those the endpoint keeps
// waiting, and every call was served.
TEST_F(ShimEndpointTest, SandboxCallsOnFreshConnectionsLeaveNoThreadsBehind) {
  constexpr uint32_t kLarge = 64u << 20;  // kMaxRunSandboxResponse
  spb::RunSandboxRequest req;
  req.add_command("/bin/true");
  auto call = [&] {
    auto fd = ttrpc::ConnectUnix(path_);
    if (!fd.ok()) return fd.status();
    auto answer = ttrpc::CallOnConnection(fd->get(), kSandboxes, "RunSandbox",
                                          req.SerializeAsString(), kLarge);
    if (!answer.ok()) return answer.status();
    spb::SandboxResult result;
    if (!result.ParseFromString(*answer) || result.status() != "succeeded") {
      return absl::InternalError("RunSandbox: " + result.status() + " " + result.error());
    }
    return absl::OkStatus();
  };
  const std::string tasks = "/proc/" + std::to_string(daemon_->pid()) + "/task";
  auto count = [&] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(tasks)) n++;
    return n;
  };
  ASSERT_TRUE(call().ok());  // whatever rauhad starts once, on its first sandbox
  const size_t before = count();
  constexpr int kCalls = 30;
  for (int i = 0; i < kCalls; i++) {
    absl::Status st = call();
    ASSERT_TRUE(st.ok()) << "call " << i << ": " << st;
  }
  // Tasks' own helpers end with their tasks; the endpoint keeps at most its idle bound.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (count() > before + ttrpc::Server::kIdleThreads &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(count(), before + ttrpc::Server::kIdleThreads)
      << "rauhad had " << before << " threads before " << kCalls << " calls";
}

}  // namespace
}  // namespace rauha::testing
