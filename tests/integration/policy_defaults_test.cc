// Policies as a new user writes them, against a real rauhad: the smallest policy runs a task
// and verifies, a zone without [resources] is bounded in the kernel, the baseline devices
// open in every zone (the shim's /dev and the cgroup-bpf dev program agree), the default zone
// has no raw sockets but ping works, and rules that cannot apply come back as warnings.
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace zpb = rauha::zone::v1;

using PolicyDefaultsTest = DaemonTest;

constexpr char kOnlyZone[] = "[zone]\nname = \"small\"\n";

zpb::ZoneStatsResponse Stats(Daemon& d, const std::string& zone) {
  zpb::ZoneStatsRequest req;
  req.set_zone_name(zone);
  zpb::ZoneStatsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = d.Zones()->ZoneStats(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

std::string GetPolicy(Daemon& d, const std::string& zone) {
  zpb::GetPolicyRequest req;
  req.set_zone_name(zone);
  zpb::GetPolicyResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetPolicy(&ctx, req, &resp).ok());
  return resp.policy_toml();
}

zpb::VerifyIsolationResponse Verify(Daemon& d, const std::string& zone) {
  zpb::VerifyIsolationRequest req;
  req.set_zone_name(zone);
  zpb::VerifyIsolationResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = d.Zones()->VerifyIsolation(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

uint64_t HostMemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

// The defect: a policy without [devices] (or without /dev/null in it) could run no task ("open
// /dev/null: Operation not permitted") and verify blamed isolation.
TEST_F(PolicyDefaultsTest, PolicyWithOnlyZoneTableRunsATaskAndVerifies) {
  rauha::sandbox::v1::RunSandboxRequest req;
  req.set_policy_toml(kOnlyZone);
  auto r = Run({"/bin/sh", "-c", "echo hi >/dev/null && head -c 4 /dev/urandom | wc -c"}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout(), "4\n");

  ASSERT_TRUE(CreateZone("small", kOnlyZone).ok());
  auto v = Verify(*daemon_, "small");
  for (const auto& c : v.checks()) EXPECT_TRUE(c.passed()) << c.name() << ": " << c.detail();
  EXPECT_TRUE(v.is_isolated());
}

// Every baseline device opens in a zone whose [devices] lists none of them, a pty pair included
// (the zone's devpts: /dev/ptmx 5:2 and /dev/pts/N 136:N through the cgroup-bpf program); a
// host device outside the list is neither in /dev nor openable through mknod.
TEST_F(PolicyDefaultsTest, BaselineDevicesOpenInEveryZone) {
  rauha::sandbox::v1::RunSandboxRequest req;
  req.set_policy_toml("[devices]\nallowed = []\n");
  auto r = Run({"/usr/bin/python3", "-c", R"py(
import os
for d in ("null", "zero", "full", "random", "urandom"):
    os.close(os.open("/dev/" + d, os.O_RDWR))
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
except OSError as e:
    print("tty", e.errno)  # ENXIO: no controlling terminal, not a refusal
m, s = os.openpty()
print("pty", os.ttyname(s).startswith("/dev/pts/"))
print("kmsg", os.path.exists("/dev/kmsg"))
)py"},
               req);
  EXPECT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout(), "tty 6\npty True\nkmsg False\n") << r.stderr();
}

// No [resources]: the default policy's limits, read back from the kernel; "max" is unbounded,
// and ZoneStats then reports the host's memory, never 0.
TEST_F(PolicyDefaultsTest, ZoneWithoutResourcesIsBoundedAndMaxIsUnbounded) {
  ASSERT_TRUE(CreateZone("bounded", kOnlyZone).ok());
  auto stats = Stats(*daemon_, "bounded");
  EXPECT_EQ(stats.memory_limit_bytes(), 4ull << 30);
  EXPECT_EQ(stats.pids_max(), 512u);
  std::string policy = GetPolicy(*daemon_, "bounded");
  EXPECT_NE(policy.find("memory_limit = \"4Gi\"\n"), std::string::npos) << policy;
  EXPECT_NE(policy.find("pids_max = 512\n"), std::string::npos) << policy;
  EXPECT_NE(policy.find("\"/dev/null\""), std::string::npos) << policy;

  ASSERT_TRUE(
      CreateZone("unbounded", "[resources]\nmemory_limit = \"max\"\npids_max = \"max\"\n").ok());
  stats = Stats(*daemon_, "unbounded");
  EXPECT_EQ(stats.memory_limit_bytes(), HostMemTotalBytes());
  EXPECT_GT(stats.memory_limit_bytes(), 0u);
  EXPECT_EQ(stats.pids_max(), 0u) << "pids.max reads \"max\"";
  EXPECT_NE(GetPolicy(*daemon_, "unbounded").find("memory_limit = \"max\"\n"), std::string::npos);

  // A policy applied to a live zone lifts a limit it no longer states as "max".
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("bounded");
  apply.set_policy_toml("[resources]\nmemory_limit = \"max\"\n");
  zpb::ApplyPolicyResponse applied;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->ApplyPolicy(&ctx, apply, &applied).ok());
  EXPECT_EQ(Stats(*daemon_, "bounded").memory_limit_bytes(), HostMemTotalBytes());
  EXPECT_EQ(Stats(*daemon_, "bounded").pids_max(), 512u);
  auto v = Verify(*daemon_, "bounded");
  for (const auto& c : v.checks()) {
    if (c.name() == "limit.memory_limit") {
      EXPECT_TRUE(c.passed()) << c.detail();
    }
  }
}

// The default policy drops CAP_NET_RAW: no raw socket (the capability is gone; the cgroup-bpf
// sock_create program stands behind it), but ping works through an ICMP socket, since the zone's
// own network namespace opens net.ipv4.ping_group_range. The host's setting is untouched.
TEST_F(PolicyDefaultsTest, DefaultZoneHasNoRawSocketButPingsItsLoopback) {
  std::string host_range;
  std::getline(std::ifstream("/proc/sys/net/ipv4/ping_group_range"), host_range);
  if (::access("/usr/bin/ping", X_OK) != 0 && ::access("/bin/ping", X_OK) != 0) {
    if (RequireAll()) FAIL() << "ping is not installed (deploy/install-deps.sh installs it)";
    GTEST_SKIP() << "ping is not installed (iputils-ping)";
  }
  auto raw = Run({"/usr/bin/python3", "-c", R"py(
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print("raw socket opened")
except PermissionError as e:
    print("refused", e.errno)
)py"});
  // EPERM: the kernel checks CAP_NET_RAW before the cgroup-bpf sock_create program runs.
  EXPECT_EQ(raw.stdout(), "refused 1\n") << raw.stderr();

  auto ping =
      Run({"/bin/sh", "-c", "cat /proc/sys/net/ipv4/ping_group_range; ping -c 1 -W 2 127.0.0.1"});
  EXPECT_EQ(ping.exit_code(), 0) << ping.stdout() << ping.stderr();
  // Every group: of the host's ids, or, in the zone's own user namespace, all of its groups.
  EXPECT_TRUE(ping.stdout().rfind("0\t2147483647\n", 0) == 0 ||
              ping.stdout().rfind("0\t65535\n", 0) == 0)
      << ping.stdout();
  EXPECT_NE(ping.stdout().find("1 received"), std::string::npos) << ping.stdout();

  std::string after;
  std::getline(std::ifstream("/proc/sys/net/ipv4/ping_group_range"), after);
  EXPECT_EQ(after, host_range);

  // verify: the raw-socket check is a refusal now, not "the policy allows it".
  ASSERT_TRUE(CreateZone("dflt").ok());
  auto checks = Verify(*daemon_, "dflt");
  for (const auto& c : checks.checks()) {
    if (c.name() != "try.network.raw_socket") continue;
    EXPECT_TRUE(c.passed()) << c.detail();
    EXPECT_EQ(c.detail().rfind("refused by ", 0), 0u) << c.detail();
  }
}

// Rules that cannot apply are accepted with a warning in the response (and an event).
TEST_F(PolicyDefaultsTest, RulesOnAnIsolatedZoneComeBackAsWarnings) {
  zpb::CreateZoneRequest req;
  req.set_name("warned");
  req.set_policy_toml("[network]\nmode = \"isolated\"\nallowed_egress = [\"0.0.0.0/0\"]\n");
  zpb::CreateZoneResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->CreateZone(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.policy_warnings_size(), 1);
  EXPECT_EQ(resp.policy_warnings(0).rfind(
                "<policy_toml>:3:18: network.allowed_egress has no effect: ", 0),
            0u)
      << resp.policy_warnings(0);

  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("warned");
  apply.set_policy_toml("[network]\nallowed_ingress = [\"10.0.0.0/8\"]\n");
  zpb::ApplyPolicyResponse applied;
  grpc::ClientContext actx;
  ASSERT_TRUE(daemon_->Zones()->ApplyPolicy(&actx, apply, &applied).ok());
  ASSERT_EQ(applied.policy_warnings_size(), 1);
  EXPECT_NE(applied.policy_warnings(0).find("network.allowed_ingress"), std::string::npos);
}

// Kept from before, with the reason in the error: host networking is for privileged zones.
TEST_F(PolicyDefaultsTest, HostNetworkForANonGlobalZoneIsRefusedWithTheReason) {
  grpc::Status st =
      CreateZone("h", "[zone]\ntype = \"privileged\"\n[network]\nmode = \"host\"\n", "non-global");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("no zone network rule applies"), std::string::npos)
      << st.error_message();
}

}  // namespace
}  // namespace rauha::testing
