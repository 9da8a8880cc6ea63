// Kernel enforcement through a real rauhad: denials in a zone reach the task's result, the
// WatchEvents stream and the zone's counters with the fields a user reads; admission refuses
// what this host cannot enforce; VerifyIsolation tries; and a zone's BPF links go with it.
// (Inside-versus-outside for each cgroup-bpf hook is tests/ebpf; the LSM programs run in the
// qemu guest, label ebpf-vm.)
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "rauha-common/fd.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using EnforcementTest = DaemonTest;

// bash opens a TCP connection for a redirection to /dev/tcp/ADDR/PORT. 192.0.2.1 is
// TEST-NET-1 (documentation only); the zone is isolated, and cgroup/connect4 refuses before
// any route lookup.
const std::vector<std::string> kDeniedConnect = {"/bin/bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/9"};

const spb::EnforcementEventSummary* FindEvent(const spb::SandboxResult& r, std::string_view hook) {
  for (const auto& e : r.enforcement_events()) {
    if (e.hook() == hook) return &e;
  }
  return nullptr;
}

std::string Describe(const spb::SandboxResult& r) {
  std::string out = "stderr: " + r.stderr() + "\nevents:\n";
  for (const auto& e : r.enforcement_events())
    out += e.layer() + " " + e.hook() + " " + e.object() + " " + e.message() + "\n";
  return out;
}

zpb::ZoneInfo GetZone(Daemon& d, const std::string& name) {
  zpb::GetZoneRequest req;
  req.set_name(name);
  zpb::GetZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetZone(&ctx, req, &resp).ok());
  return resp.zone();
}

uint64_t Denied(const zpb::ZoneInfo& z, std::string_view hook) {
  for (const auto& c : z.enforcement_counters()) {
    if (c.hook() == hook) return c.denied();
  }
  return 0;
}

bool LsmLoaded(Daemon& d) {
  zpb::HostEnforcement host;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetHostEnforcement(&ctx, {}, &host).ok());
  for (const auto& l : host.layers()) {
    if (l.name() == "lsm") return l.active();
  }
  return false;
}

// The zone's cgroup v2 id, from its "cgroup" layer ("cgroup id 1234; limits: ...").
uint64_t CgroupIdOf(const zpb::ZoneInfo& z) {
  for (const auto& l : z.layers()) {
    if (l.name() != "cgroup") continue;
    return std::stoull(l.detail().substr(std::string("cgroup id ").size()));
  }
  return 0;
}

// BPF links attached to the cgroup with this id, across the whole kernel.
int CgroupLinks(uint64_t cgroup_id) {
  int count = 0;
  __u32 id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd) continue;
    bpf_link_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) ++count;
  }
  return count;
}

TEST_F(EnforcementTest, DeniedConnectIsInTheResultWithItsFields) {
  auto r = Run(kDeniedConnect);
  EXPECT_EQ(r.status(), "failed");
  EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  const auto* e = FindEvent(r, "cgroup/connect4");
  ASSERT_NE(e, nullptr) << Describe(r);
  EXPECT_EQ(e->layer(), "cgroup-bpf");
  EXPECT_EQ(e->action(), "connect");
  EXPECT_EQ(e->decision(), "deny");
  EXPECT_EQ(e->object(), "192.0.2.1:9/tcp");
  EXPECT_EQ(e->comm(), "bash");
  EXPECT_TRUE(e->has_pid());
  EXPECT_GT(e->pid(), 1u);
  EXPECT_EQ(e->source_zone(), r.zone_name());
  EXPECT_FALSE(e->timestamp().empty());
  EXPECT_NE(e->message().find("192.0.2.1"), std::string::npos);
  EXPECT_EQ(r.enforcement_events_lost(), 0u);
}

TEST_F(EnforcementTest, SeccompDenialIsInTheResult) {
  auto r = Run({"/bin/sh", "-c", "unshare -U true; exit 0"});
  const auto* e = FindEvent(r, "seccomp");
  ASSERT_NE(e, nullptr) << Describe(r);
  EXPECT_EQ(e->layer(), "seccomp");
  EXPECT_EQ(e->object(), "unshare");
  EXPECT_EQ(e->comm(), "unshare");
  EXPECT_EQ(e->decision(), "deny");
  EXPECT_EQ(r.enforcement_events_lost(), 0u);
}

TEST_F(EnforcementTest, AllowedWorkHasNoEvents) {
  auto r = Run({"/bin/sh", "-c", "echo hi > /tmp/x && cat /tmp/x /dev/null && ls / >/dev/null"});
  EXPECT_EQ(r.status(), "succeeded") << r.stderr();
  EXPECT_EQ(r.enforcement_events_size(), 0) << Describe(r);
}

TEST_F(EnforcementTest, ManyDenialsAreAllReportedWithoutLoss) {
  // 500 refused connects in one task: every one is an event in the result, none lost.
  auto r = Run({"/bin/bash", "-c",
                "for i in $(seq 500); do (exec 3<>/dev/tcp/192.0.2.1/9) 2>/dev/null; done; true"});
  int connects = 0;
  for (const auto& e : r.enforcement_events()) connects += e.hook() == "cgroup/connect4";
  EXPECT_EQ(connects, 500);
  EXPECT_EQ(r.enforcement_events_lost(), 0u);
}

TEST_F(EnforcementTest, WatchEventsStreamsDenialsAndZoneShowCountsThem) {
  ASSERT_TRUE(CreateZone("watched").ok());
  zpb::WatchEventsRequest wreq;
  wreq.set_zone_name("watched");
  grpc::ClientContext wctx;
  // A missing event must fail the test, not hang it.
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = daemon_->Zones()->WatchEvents(&wctx, wreq);
  reader->WaitForInitialMetadata();

  spb::RunSandboxRequest req;
  req.set_name("watched");
  auto r1 = Run(kDeniedConnect, req);
  auto r2 = Run({"/bin/bash", "-c", "(exec 3<>/dev/tcp/192.0.2.1/9); unshare -U true"}, req);
  ASSERT_NE(FindEvent(r1, "cgroup/connect4"), nullptr) << Describe(r1);

  std::vector<nlohmann::json> seen;
  zpb::ZoneEvent ev;
  while (seen.size() < 3 && reader->Read(&ev)) {
    if (ev.event_type() != "enforcement") continue;
    EXPECT_EQ(ev.zone_name(), "watched");
    EXPECT_FALSE(ev.timestamp().empty());
    seen.push_back(nlohmann::json::parse(ev.message()));
  }
  wctx.TryCancel();
  reader->Finish();
  std::string all;
  for (const auto& j : seen) all += j.dump() + "\n";
  ASSERT_EQ(seen.size(), 3u) << all;
  EXPECT_EQ(seen[0]["hook"], "cgroup/connect4");
  EXPECT_EQ(seen[0]["layer"], "cgroup-bpf");
  EXPECT_EQ(seen[0]["object"], "192.0.2.1:9/tcp");
  EXPECT_EQ(seen[0]["zone_name"], "watched");
  int seccomp = 0;
  for (const auto& j : seen) seccomp += j["hook"] == "seccomp";
  EXPECT_EQ(seccomp, 1);

  auto zone = GetZone(*daemon_, "watched");
  EXPECT_EQ(Denied(zone, "cgroup/connect4"), 2u);
  EXPECT_EQ(Denied(zone, "seccomp"), 1u);
  EXPECT_EQ(zone.enforcement_events_lost(), 0u);
}

TEST_F(EnforcementTest, ZoneShowNamesTheLayerOfEachControl) {
  ASSERT_TRUE(CreateZone("layers").ok());
  auto zone = GetZone(*daemon_, "layers");
  std::map<std::string, std::string> layer;
  for (const auto& c : zone.controls()) layer[c.control()] = c.layer();
  bool lsm = LsmLoaded(*daemon_);
  EXPECT_EQ(layer["mount"], lsm ? "lsm" : "seccomp");
  EXPECT_EQ(layer["devices"], "cgroup-bpf");
  EXPECT_EQ(layer["sysctl.write"], "cgroup-bpf");
  EXPECT_EQ(layer["syscalls.deny"], "seccomp");
  EXPECT_EQ(layer["filesystem.write"], lsm ? "lsm" : "landlock");
  EXPECT_FALSE(layer.count("exec.denied")) << "the policy states no exec list";
  bool cgroup_bpf_active = false;
  for (const auto& l : zone.layers()) cgroup_bpf_active |= l.name() == "cgroup-bpf" && l.active();
  EXPECT_TRUE(cgroup_bpf_active);
}

TEST_F(EnforcementTest, AdmissionRefusesControlsNothingHereEnforces) {
  const std::string exec_denied = PolicyWith("", "[exec]\ndenied = [\"/usr/bin/curl\"]\n");
  grpc::Status st = CreateZone("gap", exec_denied);
  if (LsmLoaded(*daemon_)) {
    EXPECT_TRUE(st.ok()) << "with LSM programs loaded exec lists are enforced";
    return;
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("exec.denied"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("audit"), std::string::npos) << st.error_message();
  zpb::ListZonesResponse list;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &list).ok());
  EXPECT_EQ(list.zones_size(), 0) << "a refused zone leaves nothing";

  // Audit mode admits it and reports the gap, to the zone and to each task's result.
  const std::string audited =
      PolicyWith("", "[admission]\nmode = \"audit\"\n\n[exec]\ndenied = [\"/usr/bin/curl\"]\n");
  ASSERT_TRUE(CreateZone("gap", audited).ok());
  auto zone = GetZone(*daemon_, "gap");
  bool gap_reported = false;
  for (const auto& c : zone.controls())
    gap_reported |= c.control() == "exec.denied" && c.layer().empty();
  EXPECT_TRUE(gap_reported);
  spb::RunSandboxRequest req;
  req.set_name("gap");
  auto r = Run({"/bin/true"}, req);
  std::string unavailable;
  for (const auto& u : r.unavailable_controls()) unavailable += u + "\n";
  EXPECT_NE(unavailable.find("exec.denied"), std::string::npos) << unavailable;

  // ApplyPolicy is held to the same rule, and a refused policy changes nothing.
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("gap");
  apply.set_policy_toml(exec_denied);
  zpb::ApplyPolicyResponse ar;
  grpc::ClientContext actx;
  EXPECT_EQ(daemon_->Zones()->ApplyPolicy(&actx, apply, &ar).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(EnforcementTest, ExecAllowListHoldsThroughLandlockOrLsm) {
  ASSERT_TRUE(
      CreateZone("exe", PolicyWith("", "[exec]\nallowed = [\"/usr/bin\", \"/bin\"]\n")).ok());
  auto zone = GetZone(*daemon_, "exe");
  for (const auto& c : zone.controls()) {
    if (c.control() == "exec.allowed") {
      EXPECT_EQ(c.layer(), LsmLoaded(*daemon_) ? "lsm" : "landlock");
    }
  }

  spb::RunSandboxRequest req;
  req.set_name("exe");
  // A program copied to /tmp (writable, outside the list) does not run; the listed ones do.
  auto r =
      Run({"/bin/sh", "-c", "cp /usr/bin/true /tmp/t && /usr/bin/true && /tmp/t; echo rc=$?"}, req);
  EXPECT_EQ(r.stdout(), "rc=126\n") << r.stderr();
  EXPECT_NE(r.stderr().find("Permission denied"), std::string::npos) << r.stderr();
  // The workload itself must be on the list.
  auto outside = Run({"/tmp/nothing-here"}, req);
  EXPECT_EQ(outside.status(), "runtime_error");
}

TEST_F(EnforcementTest, VerifyIsolationTriesAndNamesTheRefusingLayer) {
  // Without CAP_NET_RAW and CAP_MKNOD, so every probe is one the policy forbids.
  ASSERT_TRUE(CreateZone("tried", PolicyWith("")).ok());
  zpb::VerifyIsolationRequest req;
  req.set_zone_name("tried");
  zpb::VerifyIsolationResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->VerifyIsolation(&ctx, req, &resp).ok());
  std::map<std::string, std::pair<bool, std::string>> checks;
  std::string all;
  for (const auto& c : resp.checks()) {
    checks[c.name()] = {c.passed(), c.detail()};
    all += c.name() + " " + (c.passed() ? "ok " : "FAIL ") + c.detail() + "\n";
  }
  EXPECT_TRUE(resp.is_isolated()) << all;
  for (const char* probe :
       {"try.mount", "try.namespace", "try.bpf", "try.perf_event_open", "try.kernel_module",
        "try.keyring", "try.filesystem.write", "try.signal.init", "try.ptrace.init",
        "try.network.egress", "try.network.raw_socket", "try.sysctl.write", "try.device.mknod",
        "try.cgroup.escape"}) {
    ASSERT_TRUE(checks.count(probe)) << probe << "\n" << all;
    EXPECT_TRUE(checks[probe].first) << probe << ": " << checks[probe].second;
  }
  bool lsm = LsmLoaded(*daemon_);
  EXPECT_NE(checks["try.mount"].second.find(lsm ? "lsm" : "seccomp (seccomp event)"),
            std::string::npos)
      << checks["try.mount"].second;
  EXPECT_NE(checks["try.network.egress"].second.find("cgroup/connect4 event"), std::string::npos)
      << checks["try.network.egress"].second;
  // The probe task counts as a task of the zone while it runs, and leaves it Ready.
  EXPECT_EQ(GetZone(*daemon_, "tried").state(), "Ready");
}

TEST_F(EnforcementTest, ZoneDeleteDetachesItsBpfPrograms) {
  ASSERT_TRUE(CreateZone("links").ok());
  uint64_t id = CgroupIdOf(GetZone(*daemon_, "links"));
  ASSERT_NE(id, 0u);
  EXPECT_EQ(CgroupLinks(id), 9) << "connect4/6, sendmsg4/6, bind4/6, sock_create, dev, sysctl";
  zpb::DeleteZoneRequest del;
  del.set_name("links");
  zpb::DeleteZoneResponse dr;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &dr).ok());
  EXPECT_EQ(CgroupLinks(id), 0);
}

}  // namespace
}  // namespace rauha::testing
