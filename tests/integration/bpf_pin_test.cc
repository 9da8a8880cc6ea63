// A zone's cgroup-bpf programs are pinned in its rauhad's bpffs directory, so a kill -9 of
// rauhad leaves them enforcing; the next rauhad adopts them (no duplicates) and events flow
// again; a zone's pins go with it, and a clean stop leaves nothing pinned or attached.
#include <sys/stat.h>

#include <string>
#include <thread>

#include "tests/integration/bpf_probe.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using BpfPinTest = DaemonTest;

zpb::ZoneInfo GetZone(Daemon& d, const std::string& name) {
  zpb::GetZoneRequest req;
  req.set_name(name);
  zpb::GetZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetZone(&ctx, req, &resp).ok()) << name;
  return resp.zone();
}

uint64_t Denied(const zpb::ZoneInfo& z, std::string_view hook) {
  for (const auto& c : z.enforcement_counters())
    if (c.hook() == hook) return c.denied();
  return 0;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

template <typename Pred>
bool Eventually(Pred pred, int ms = 3000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST_F(BpfPinTest, Kill9LeavesTheZoneEnforcedAndRestartAdoptsItsLinks) {
  ASSERT_TRUE(CreateZone("guarded").ok());
  uint64_t cg = ZoneCgroupId(GetZone(*daemon_, "guarded"));
  ASSERT_NE(cg, 0u);
  EXPECT_EQ(CgroupLinkCount(cg), 9) << "connect4/6, sendmsg4/6, bind4/6, sock_create, dev, sysctl";
  EXPECT_EQ(PinnedLinkCount(*daemon_, cg), 9u);
  ConnectProbe probe(daemon_.get(), "guarded");

  int64_t killed_at = RealtimeNs();
  daemon_->Kill9();
  // rauhad is gone: the pins hold the links, and the running task stays refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(CgroupLinkCount(cg), 9) << "the zone's programs outlive rauhad";
  int64_t restarted_at = RealtimeNs();
  daemon_->Start();
  EXPECT_NE(daemon_->log().find("1 zones' links to adopt"), std::string::npos) << daemon_->log();
  EXPECT_EQ(CgroupLinkCount(cg), 9) << "adopted, not attached a second time";
  EXPECT_EQ(PinnedLinkCount(*daemon_, cg), 9u);

  std::vector<ConnectProbe::Line> lines = probe.Finish(daemon_.get());
  int while_down = 0, after_kill = 0;
  for (const auto& l : lines) {
    EXPECT_EQ(l.outcome, "DENIED") << "probe at " << l.start_ns;
    if (l.start_ns > killed_at && l.end_ns < restarted_at) ++while_down;
    if (l.start_ns > killed_at) ++after_kill;
  }
  EXPECT_GT(while_down, 0) << "the probe ran while rauhad was down (" << lines.size() << " lines)";

  // Events flow again: a new denial is in its task's result, and the zone's counters include
  // the denials made while rauhad was down (they waited in the pinned ring buffer).
  spb::RunSandboxRequest req;
  req.set_name("guarded");
  auto r = Run({"/bin/bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/9"}, req);
  ASSERT_EQ(r.enforcement_events_size(), 1) << r.stderr();
  EXPECT_EQ(r.enforcement_events(0).hook(), "cgroup/connect4");
  EXPECT_TRUE(Eventually([&] {
    return Denied(GetZone(*daemon_, "guarded"), "cgroup/connect4") >=
           static_cast<uint64_t>(after_kill + 1);
  })) << "counted "
      << Denied(GetZone(*daemon_, "guarded"), "cgroup/connect4")
      << ", expected >= " << after_kill + 1;

  zpb::DeleteZoneRequest del;
  del.set_name("guarded");
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dresp).ok());
  EXPECT_EQ(CgroupLinkCount(cg), 0) << "the zone's links went with it";
  EXPECT_TRUE(PinnedZoneIds(*daemon_).empty());
}

TEST_F(BpfPinTest, CleanStopLeavesNothingPinnedOrAttachedAndZonesComeBackEnforced) {
  ASSERT_TRUE(CreateZone("stays").ok());
  uint64_t cg = ZoneCgroupId(GetZone(*daemon_, "stays"));
  ASSERT_EQ(CgroupLinkCount(cg), 9);
  std::set<uint32_t> programs = PinnedProgramIds(*daemon_);
  EXPECT_EQ(programs.size(), 9u);
  daemon_->Stop();
  EXPECT_FALSE(Exists(daemon_->pin_dir())) << "rauhad removed its pin directory";
  EXPECT_EQ(CgroupLinkCount(cg), 0);
  EXPECT_TRUE(Eventually([&] {
    for (uint32_t id : programs)
      if (ProgramExists(id)) return false;
    return true;
  })) << "no program of the stopped rauhad is left in the kernel";

  daemon_->Start();
  zpb::ZoneInfo z = GetZone(*daemon_, "stays");
  EXPECT_EQ(z.state(), "Ready");
  uint64_t cg2 = ZoneCgroupId(z);
  EXPECT_EQ(CgroupLinkCount(cg2), 9);
  EXPECT_EQ(PinnedZoneIds(*daemon_), std::set<uint64_t>{cg2});
}

TEST_F(BpfPinTest, ZoneDeletedWhileRauhadWasDownLosesItsPinsAtRestart) {
  ASSERT_TRUE(CreateZone("orphan").ok());
  zpb::ZoneInfo z = GetZone(*daemon_, "orphan");
  uint64_t cg = ZoneCgroupId(z);
  pid_t shim = static_cast<pid_t>(z.shim_pid());
  ASSERT_GT(shim, 0);
  daemon_->Kill9();
  ASSERT_EQ(::kill(shim, SIGKILL), 0);  // the shim this test's daemon started
  ASSERT_TRUE(Eventually([&] { return ::kill(shim, 0) != 0; }));
  EXPECT_EQ(CgroupLinkCount(cg), 9);
  daemon_->Start();
  // Its shim died, so the zone is Stopped and its cgroups removed: nothing may keep its
  // programs or a dying cgroup alive.
  EXPECT_EQ(GetZone(*daemon_, "orphan").state(), "Stopped");
  EXPECT_EQ(CgroupLinkCount(cg), 0);
  EXPECT_TRUE(PinnedZoneIds(*daemon_).empty());
  zpb::DeleteZoneRequest del;
  del.set_name("orphan");
  zpb::DeleteZoneResponse dresp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dresp).ok());
}

}  // namespace
}  // namespace rauha::testing
