// containerd restarts under a running pod (as on a node when containerd is upgraded): the
// pod's shim lives on, the new containerd reconnects to it (<bundle>/address), CRI still sees
// the pod ready and its container running, and the pod can then be stopped and removed with
// nothing left.
#include "tests/containerd/cri_fixture.h"

namespace rauha::testing {
namespace {

TEST_F(CriTest, PodAndContainerSurviveAContainerdRestart) {
  auto config = PodConfig("survivor");
  std::string pod = RunPod(config);
  ASSERT_FALSE(pod.empty());
  std::string c = StartContainer(pod, config, "sleeper", {"/bin/busybox", "sleep", "600"});
  ASSERT_FALSE(c.empty());
  std::vector<pid_t> shims = containerd_->ShimPids();
  ASSERT_EQ(shims.size(), 1u);
  pid_t before = containerd_->pid();

  std::string error;
  ASSERT_TRUE(containerd_->Restart(&error)) << error;
  EXPECT_NE(containerd_->pid(), before);
  // A fresh channel: the old one may be backing off from the dead socket.
  runtime_ = cri::RuntimeService::NewStub(
      grpc::CreateChannel(containerd_->cri_address(), grpc::InsecureChannelCredentials()));
  WaitCriReady();
  // The same shim serves the pod (containerd reconnected; nothing was restarted under it).
  EXPECT_EQ(containerd_->ShimPids(), shims);

  cri::PodSandboxStatus pod_status;
  PodInfo(pod, &pod_status);
  EXPECT_EQ(pod_status.state(), cri::SANDBOX_READY) << pod_status.DebugString();
  {
    grpc::ClientContext ctx;
    cri::ContainerStatusRequest req;
    req.set_container_id(c);
    cri::ContainerStatusResponse resp;
    grpc::Status s = runtime_->ContainerStatus(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.status().state(), cri::CONTAINER_RUNNING) << resp.status().DebugString();
  }
  // The reconnected shim still runs commands in the container.
  cri::ExecSyncRequest exec;
  exec.set_container_id(c);
  for (const char* arg : {"/bin/busybox", "echo", "still-here"}) exec.add_cmd(arg);
  exec.set_timeout(60);
  cri::ExecSyncResponse out;
  grpc::ClientContext ctx;
  grpc::Status s = runtime_->ExecSync(&ctx, exec, &out);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << containerd_->log();
  EXPECT_EQ(out.exit_code(), 0);
  EXPECT_EQ(out.stdout(), "still-here\n");

  // Stop and remove through the new containerd: the container's exit reaches it (the shim's
  // /tasks/exit goes to the new containerd), and TearDown finds nothing left.
  StopAndRemove(pod);
  EXPECT_TRUE(ZoneNames().empty());
}

}  // namespace
}  // namespace rauha::testing
