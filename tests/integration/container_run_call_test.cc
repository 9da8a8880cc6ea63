// RunContainer (ours; `rauha run` in the foreground): create, start and follow in one call.
// The stream names the container first, carries all of its output (stdout and stderr apart,
// more than the shim replays to a late reader), and ends with its exit code, which for an
// auto_remove container comes once the container is gone; a refused create changes nothing; a
// client that goes away leaves the container running.
#include "nlohmann/json.hpp"

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

struct RunOutput {
  std::vector<cpb::RunContainerResponse::MessageCase> order;  // message kinds as they came
  std::string id, out, err;
  std::optional<int> exit_code;
  grpc::Status status;
};

class ContainerRunCallTest : public ContainerTest {
 protected:
  cpb::CreateContainerRequest Request(const std::vector<std::string>& command, bool auto_remove) {
    cpb::CreateContainerRequest req;
    req.set_image(image_);
    for (const auto& c : command) req.add_command(c);
    req.set_auto_remove(auto_remove);
    return req;
  }

  RunOutput Run(const cpb::CreateContainerRequest& create) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::RunContainerRequest req;
    *req.mutable_create() = create;
    auto reader = containers_->RunContainer(&ctx, req);
    RunOutput r;
    cpb::RunContainerResponse m;
    while (reader->Read(&m)) {
      if (r.order.empty() || r.order.back() != m.message_case())
        r.order.push_back(m.message_case());
      switch (m.message_case()) {
        case cpb::RunContainerResponse::kContainerId:
          r.id = m.container_id();
          break;
        case cpb::RunContainerResponse::kStdoutData:
          r.out += m.stdout_data();
          break;
        case cpb::RunContainerResponse::kStderrData:
          r.err += m.stderr_data();
          break;
        case cpb::RunContainerResponse::kExitCode:
          r.exit_code = m.exit_code();
          break;
        default:
          break;
      }
    }
    r.status = reader->Finish();
    return r;
  }

  // The kinds of the audit records of container `id`, in order.
  std::vector<std::string> AuditKinds(const std::string& id) {
    std::vector<std::string> kinds;
    std::string log = ReadWholeFile(State() + "/audit/log-000000.ndjson");
    size_t pos = 0;
    while (pos < log.size()) {
      size_t nl = log.find('\n', pos);
      if (nl == std::string::npos) nl = log.size();
      auto r = nlohmann::json::parse(log.substr(pos, nl - pos), nullptr, false);
      pos = nl + 1;
      if (!r.is_object() || !r.contains("body") || !r["body"].is_object()) continue;
      if (r["body"].value("container_id", "") != id) continue;
      std::string kind = r["kind"];
      if (kind == "container.stop") {
        kind += ":" + std::to_string(r["body"].value("exit_code", -1));
      }
      kinds.push_back(kind);
    }
    return kinds;
  }
};

TEST_F(ContainerRunCallTest, StreamsAllOutputAndEndsWithTheCodeOnceAnAutoRemovedOneIsGone) {
  // 200000 bytes on stdout: three times what the shim keeps for a reader that attaches late,
  // so all of it arriving says the stream followed it from before the start.
  RunOutput r = Run(Request({"/bin/busybox", "sh", "-c",
                             "echo to-err >&2; /bin/busybox head -c 200000 /dev/zero | "
                             "/bin/busybox tr '\\0' a; echo; echo last; exit 3"},
                            /*auto_remove=*/true));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_FALSE(r.order.empty());
  EXPECT_EQ(r.order.front(), cpb::RunContainerResponse::kContainerId);
  EXPECT_EQ(r.order.back(), cpb::RunContainerResponse::kExitCode);
  ASSERT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, std::string(200000, 'a') + "\nlast\n");
  EXPECT_EQ(r.err, "to-err\n");
  // docker's run --rm: gone when the code is there (no waiting here).
  cpb::ContainerInfo info;
  EXPECT_EQ(Get(r.id, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ZoneCount(), 0);
  // Its records, in order, all in the log when the code came.
  EXPECT_EQ(AuditKinds(r.id), (std::vector<std::string>{"container.create", "container.start",
                                                        "container.stop:3", "container.delete"}));
  ExpectGone(r.id);
  int rc = 0;
  std::string out = Cli({"audit", "verify", State() + "/audit"}, &rc);
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(ContainerRunCallTest, WithoutAutoRemoveTheContainerStaysStoppedWithItsCode) {
  RunOutput r =
      Run(Request({"/bin/busybox", "sh", "-c", "echo hi; kill -TERM $$"}, /*auto_remove=*/false));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_EQ(r.out, "hi\n");
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(r.id, &info).ok());
  EXPECT_EQ(info.state(), "Stopped");
  EXPECT_EQ(info.exit_code(), 128 + SIGTERM);
  ASSERT_TRUE(Delete(r.id, false).ok());
  ExpectGone(r.id);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerRunCallTest, ARefusedCreateChangesNothing) {
  cpb::CreateContainerRequest missing = Request({"/bin/busybox", "true"}, true);
  missing.set_image(registry_->host() + "/test/nope:v1");
  RunOutput r = Run(missing);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND) << r.status.error_message();
  EXPECT_TRUE(r.id.empty());
  cpb::CreateContainerRequest bad_name = Request({"/bin/busybox", "true"}, true);
  bad_name.set_name("no/slashes");
  r = Run(bad_name);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
  cpb::CreateContainerRequest no_zone = Request({"/bin/busybox", "true"}, true);
  no_zone.set_zone_name("no-such-zone");
  r = Run(no_zone);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND) << r.status.error_message();
  grpc::ClientContext ctx;
  cpb::ListContainersResponse all;
  ASSERT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
  EXPECT_EQ(all.containers_size(), 0);
  EXPECT_EQ(ZoneCount(), 0);
  EXPECT_TRUE(!std::filesystem::exists(State() + "/containers") ||
              std::filesystem::is_empty(State() + "/containers"));
}

TEST_F(ContainerRunCallTest, AClientThatGoesAwayLeavesTheContainerRunning) {
  grpc::ClientContext ctx;
  cpb::RunContainerRequest req;
  *req.mutable_create() =
      Request({"/bin/busybox", "sh", "-c", "echo ready; exec /bin/busybox sleep 1000"}, true);
  auto reader = containers_->RunContainer(&ctx, req);
  cpb::RunContainerResponse m;
  std::string id, out;
  while (out != "ready\n" && reader->Read(&m)) {
    if (m.has_container_id()) id = m.container_id();
    out += m.stdout_data();
  }
  ASSERT_EQ(out, "ready\n");
  ASSERT_FALSE(id.empty());
  ctx.TryCancel();
  (void)reader->Finish();
  cpb::ContainerInfo info = WaitForState(id, "Running");
  EXPECT_TRUE(info.auto_remove());
  // Still removed at its exit, with nobody watching.
  ASSERT_TRUE(Stop(id, 5).ok());
  WaitGone(id);
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
