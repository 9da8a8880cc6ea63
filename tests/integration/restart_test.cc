// rauhad crashes and restarts: zones and running tasks survive through their shims; a zone
// whose shim died is marked and cleaned; a clean stop leaves nothing and zones come back.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using RestartTest = DaemonTest;

zpb::ZoneInfo GetZone(Daemon& d, const std::string& name) {
  zpb::GetZoneRequest req;
  req.set_name(name);
  zpb::GetZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetZone(&ctx, req, &resp).ok()) << name;
  return resp.zone();
}

std::vector<std::string> ZoneCgroupDirs(Daemon& d) {
  std::vector<std::string> out;
  for (const auto& parent : d.LeftoverCgroups()) {
    for (const auto& child : std::filesystem::directory_iterator(parent)) {
      if (child.is_directory()) out.push_back(child.path());
    }
  }
  return out;
}

TEST_F(RestartTest, Kill9KeepsZonesAndARunningTaskCanStillBeWaitedFor) {
  ASSERT_TRUE(CreateZone("keep").ok());
  std::string zone_id = daemon_->ZoneId("keep");
  // The task runs until the test says so: a fixed sleep ended before the restart did under
  // load, and the zone was then rightly Ready.
  const std::string repo = daemon_->dir() + "/repo";
  std::filesystem::create_directories(repo);
  std::thread client([&] {
    spb::RunSandboxRequest req;
    req.set_name("keep");
    req.set_repo_path(repo);
    grpc::Status st;
    Run({"/bin/sh", "-c", "while [ ! -e /workspace/go ]; do sleep 0.05; done; echo finished"}, req,
        &st);
    EXPECT_FALSE(st.ok()) << "the call's daemon died under it";
  });
  std::string task_id = daemon_->WaitForRunningTask();
  ASSERT_FALSE(task_id.empty());
  daemon_->Kill9();
  client.join();
  daemon_->Start();

  zpb::ZoneInfo z = GetZone(*daemon_, "keep");
  EXPECT_EQ(z.id(), zone_id);
  EXPECT_EQ(z.state(), "Running");
  std::ofstream(repo + "/go").put('\n');
  spb::WaitTaskRequest wreq;
  wreq.set_task_id(task_id);
  spb::SandboxResult result;
  grpc::ClientContext wctx;
  ASSERT_TRUE(daemon_->Sandbox()->WaitTask(&wctx, wreq, &result).ok());
  EXPECT_EQ(result.status(), "succeeded");
  EXPECT_EQ(result.stdout(), "finished\n");
  EXPECT_EQ(GetZone(*daemon_, "keep").state(), "Ready");
  spb::SandboxResult again;
  grpc::ClientContext actx;
  EXPECT_EQ(daemon_->Sandbox()->WaitTask(&actx, wreq, &again).error_code(),
            grpc::StatusCode::NOT_FOUND)
      << "a result is collected once";
}

TEST_F(RestartTest, ZoneWhoseShimDiedIsMarkedAndCleaned) {
  ASSERT_TRUE(CreateZone("lost").ok());
  pid_t shim = static_cast<pid_t>(GetZone(*daemon_, "lost").shim_pid());
  ASSERT_GT(shim, 0);
  daemon_->Kill9();
  ASSERT_EQ(::kill(shim, SIGKILL), 0);  // the shim this test's daemon started
  for (int i = 0; i < 100 && ::kill(shim, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  daemon_->Start();
  zpb::ZoneInfo z = GetZone(*daemon_, "lost");
  EXPECT_EQ(z.state(), "Stopped");
  EXPECT_NE(z.state_reason().find("shim"), std::string::npos) << z.state_reason();
  EXPECT_TRUE(ZoneCgroupDirs(*daemon_).empty()) << "its cgroups were removed";
  zpb::DeleteZoneRequest del;
  del.set_name("lost");
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dresp).ok());
}

TEST_F(RestartTest, CleanStopLeavesNothingAndZonesComeBack) {
  ASSERT_TRUE(CreateZone("persist").ok());
  std::string id = daemon_->ZoneId("persist");
  daemon_->Stop();
  EXPECT_TRUE(daemon_->LeftoverProcesses().empty());
  EXPECT_TRUE(daemon_->LeftoverCgroups().empty());
  EXPECT_TRUE(daemon_->LeftoverMounts().empty());
  daemon_->Start();
  zpb::ZoneInfo z = GetZone(*daemon_, "persist");
  EXPECT_EQ(z.id(), id);
  EXPECT_EQ(z.state(), "Ready");
  spb::RunSandboxRequest req;
  req.set_name("persist");
  auto r = Run({"/bin/echo", "back"}, req);
  EXPECT_EQ(r.stdout(), "back\n");
}

TEST_F(RestartTest, TemporaryZoneOfASurvivingTaskGoesOnceTheTaskEnds) {
  std::thread client([&] {
    grpc::Status st;
    Run({"/bin/sh", "-c", "sleep 1; echo temp-done"}, {}, &st);
  });
  std::string task_id = daemon_->WaitForRunningTask();
  ASSERT_FALSE(task_id.empty());
  daemon_->Kill9();
  client.join();
  daemon_->Start();
  spb::WaitTaskRequest wreq;
  wreq.set_task_id(task_id);
  spb::SandboxResult result;
  grpc::ClientContext wctx;
  ASSERT_TRUE(daemon_->Sandbox()->WaitTask(&wctx, wreq, &result).ok());
  EXPECT_EQ(result.stdout(), "temp-done\n");
  zpb::ListZonesResponse zones;
  grpc::ClientContext lctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&lctx, {}, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0) << "the task's temporary zone is removed";
  EXPECT_TRUE(ZoneCgroupDirs(*daemon_).empty());
}

TEST_F(RestartTest, ZoneDeleteLeavesNoCgroupMountOrProcess) {
  ASSERT_TRUE(CreateZone("gone").ok());
  spb::RunSandboxRequest req;
  req.set_name("gone");
  auto r = Run({"/bin/sh", "-c", "sleep 30 & echo started"}, req);
  EXPECT_EQ(r.stdout(), "started\n");
  EXPECT_FALSE(ZoneCgroupDirs(*daemon_).empty());
  zpb::DeleteZoneRequest del;
  del.set_name("gone");
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dresp).ok());
  EXPECT_TRUE(ZoneCgroupDirs(*daemon_).empty());
  EXPECT_TRUE(daemon_->LeftoverMounts().empty());
  // Only rauhad itself still mentions the test directory: the shim is gone.
  auto procs = daemon_->LeftoverProcesses();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0], daemon_->pid());
}

}  // namespace
}  // namespace rauha::testing
