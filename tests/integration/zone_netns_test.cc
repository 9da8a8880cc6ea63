// CreateZoneRequest.network_namespace: a zone whose tasks share an existing network namespace
// (a Kubernetes pod's, made by CNI) instead of making their own; bad paths are refused and
// change nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "rauha-common/fd.h"
#include "rauha/v1/zone.grpc.pb.h"
#include "tests/integration/cli_runner.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/nft_list_in.h"

namespace rauha::testing {
namespace {

namespace zv = rauha::zone::v1;

class ZoneNetnsTest : public DaemonTest {
 protected:
  // A network namespace of the test's, made on a thread (unshare acts on it alone) and held
  // by netns_; /proc/<our pid>/fd/<fd> names it for rauhad and its shim.
  void SetUp() override {
    DaemonTest::SetUp();
    std::thread([&] {
      if (::unshare(CLONE_NEWNET) == 0) {
        netns_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
      }
    }).join();
    ASSERT_TRUE(netns_) << "cannot make a network namespace";
    path_ = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(netns_.get());
    struct stat st;
    ASSERT_EQ(::fstat(netns_.get(), &st), 0);
    inode_ = st.st_ino;
  }
  void TearDown() override {
    DaemonTest::TearDown();
    netns_.reset();
  }

  grpc::Status Create(const std::string& name, const std::string& netns,
                      const std::string& policy = "", const std::string& hostname = "",
                      zv::CreateZoneResponse* resp = nullptr) {
    zv::CreateZoneRequest req;
    req.set_name(name);
    req.set_network_namespace(netns);
    req.set_policy_toml(policy);
    req.set_hostname(hostname);
    zv::CreateZoneResponse ignored;
    grpc::ClientContext ctx;
    return daemon_->Zones()->CreateZone(&ctx, req, resp != nullptr ? resp : &ignored);
  }

  // ApplyPolicy's warnings; fails the test when the call fails.
  std::vector<std::string> ApplyWarnings(const std::string& name, const std::string& policy) {
    zv::ApplyPolicyRequest req;
    req.set_zone_name(name);
    req.set_policy_toml(policy);
    zv::ApplyPolicyResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->ApplyPolicy(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return {resp.policy_warnings().begin(), resp.policy_warnings().end()};
  }

  // `rauha policy apply ZONE FILE` as a user runs it.
  CliRun CliApply(const std::string& zone, const std::string& file) {
    const std::string out = daemon_->dir() + "/cli.out";
    const std::string err = daemon_->dir() + "/cli.err";
    return FinishCli(
        SpawnCli({RAUHA_CLI_BIN, "--socket", daemon_->socket(), "policy", "apply", zone, file}, out,
                 err),
        out, err);
  }

  zv::ZoneInfo Get(const std::string& name) {
    zv::GetZoneRequest get;
    get.set_name(name);
    zv::GetZoneResponse got;
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->GetZone(&ctx, get, &got);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return got.zone();
  }

  int ZoneCount() {
    zv::ListZonesResponse zones;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
    return zones.zones_size();
  }

  UniqueFd netns_;
  std::string path_;
  ino_t inode_ = 0;
};

TEST_F(ZoneNetnsTest, TasksShareTheGivenNetworkNamespace) {
  ASSERT_TRUE(Create("pod1", path_).ok());
  zv::GetZoneRequest get;
  get.set_name("pod1");
  zv::GetZoneResponse got;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->GetZone(&ctx, get, &got).ok());
  }
  EXPECT_EQ(got.zone().network_namespace(), path_);
  // The zone's shim holds the namespace (rauhad joined nothing itself).
  struct stat shim_ns;
  ASSERT_EQ(
      ::stat(("/proc/" + std::to_string(got.zone().shim_pid()) + "/ns/net").c_str(), &shim_ns), 0);
  EXPECT_EQ(shim_ns.st_ino, inode_);
  // A task of the zone is in it too.
  rauha::sandbox::v1::RunSandboxRequest req;
  req.set_name("pod1");
  auto r = Run({"/bin/sh", "-c", "readlink /proc/self/ns/net"}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.DebugString();
  EXPECT_EQ(r.stdout(), "net:[" + std::to_string(inode_) + "]\n") << r.DebugString();
  // Another zone, without one, has its own.
  ASSERT_TRUE(CreateZone("own").ok());
  req.set_name("own");
  auto own = Run({"/bin/sh", "-c", "readlink /proc/self/ns/net"}, req);
  EXPECT_EQ(own.status(), "succeeded") << own.DebugString();
  EXPECT_NE(own.stdout(), r.stdout());

  for (const char* name : {"pod1", "own"}) {
    zv::DeleteZoneRequest del;
    del.set_name(name);
    zv::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
  }
}

TEST_F(ZoneNetnsTest, BadNamespacesAreRefusedAndChangeNothing) {
  auto relative = Create("bad1", "proc/1/ns/net");
  EXPECT_EQ(relative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(relative.error_message().find("absolute"), std::string::npos)
      << relative.error_message();
  auto missing = Create("bad2", "/nonexistent/netns");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(missing.error_message().find("/nonexistent/netns"), std::string::npos)
      << missing.error_message();
  auto not_netns = Create("bad3", "/proc/self/ns/uts");
  EXPECT_EQ(not_netns.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(not_netns.error_message().find("not a network namespace"), std::string::npos)
      << not_netns.error_message();
  // The privileged preset: host network, which a joined namespace would contradict.
  std::ifstream preset(std::string(RAUHA_SOURCE_DIR) + "/policies/privileged.toml");
  std::string privileged((std::istreambuf_iterator<char>(preset)), {});
  ASSERT_NE(privileged.find("mode = \"host\""), std::string::npos);
  auto host = Create("bad4", path_, privileged);
  EXPECT_EQ(host.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(host.error_message().find("isolated"), std::string::npos) << host.error_message();
  EXPECT_EQ(ZoneCount(), 0);
}

// The joined namespace's path and the hostname are in the zone's record: a clean rauhad restart
// brings the zone back in that namespace (its shim and tasks in it, the same hostname); once
// the namespace is gone, the zone stays stopped and says why, and can be deleted.
TEST_F(ZoneNetnsTest, CleanRestartRejoinsTheNamespaceOrSaysItIsGone) {
  ASSERT_TRUE(Create("pod1", path_, "", "pod-one").ok());
  daemon_->Stop();
  daemon_->Start();
  zv::ZoneInfo z = Get("pod1");
  EXPECT_EQ(z.state(), "Ready") << z.state_reason();
  EXPECT_EQ(z.network_namespace(), path_);
  EXPECT_EQ(z.hostname(), "pod-one");
  struct stat shim_ns;
  ASSERT_EQ(::stat(("/proc/" + std::to_string(z.shim_pid()) + "/ns/net").c_str(), &shim_ns), 0);
  EXPECT_EQ(shim_ns.st_ino, inode_);
  rauha::sandbox::v1::RunSandboxRequest req;
  req.set_name("pod1");
  auto r = Run({"/bin/sh", "-c", "readlink /proc/self/ns/net; hostname"}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.DebugString();
  EXPECT_EQ(r.stdout(), "net:[" + std::to_string(inode_) + "]\npod-one\n") << r.DebugString();

  // Stopped again, and the namespace goes with the last holder (the test's fd).
  daemon_->Stop();
  netns_.reset();
  daemon_->Start();
  z = Get("pod1");
  EXPECT_EQ(z.state(), "Stopped");
  EXPECT_NE(z.state_reason().find("the network namespace it joined is gone"), std::string::npos)
      << z.state_reason();
  EXPECT_NE(z.state_reason().find(path_), std::string::npos) << z.state_reason();
  zv::DeleteZoneRequest del;
  del.set_name("pod1");
  zv::DeleteZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
  EXPECT_EQ(ZoneCount(), 0);
}

// The zone's ingress rules are a table inside the namespace it joined: there while it lives,
// taken over (and rebuilt) by a rauhad that restarts after a crash under its live shim, changed
// by ApplyPolicy, and deleted with the zone though the namespace lives on.
TEST_F(ZoneNetnsTest, IngressTableLivesInTheJoinedNamespaceAndGoesWithTheZone) {
  auto policy = [](const std::string& rule) {
    return "[network]\nmode = \"isolated\"\nallowed_ingress = [\"" + rule + "\"]\n";
  };
  ASSERT_TRUE(Create("pod1", path_, policy("192.0.2.0/24:80")).ok());
  zv::ZoneInfo z = Get("pod1");
  std::string hex;
  for (char c : z.id()) {
    if (hex.size() < 8 && std::isxdigit(static_cast<unsigned char>(c))) hex += c;
  }
  const std::string list = "list table inet rauha_" + hex;
  std::string table = NftListIn(netns_.get(), list);
  EXPECT_NE(table.find("hook input"), std::string::npos) << table;
  EXPECT_NE(table.find("ip saddr 192.0.2.0/24"), std::string::npos) << table;
  EXPECT_NE(table.find("dport 80 accept"), std::string::npos) << table;
  EXPECT_NE(z.network_rules().find("ip saddr 192.0.2.0/24"), std::string::npos)
      << z.network_rules();

  // A crash: the shim lives on, the table kept filtering; the new rauhad takes it over.
  daemon_->Kill9();
  daemon_->Start();
  z = Get("pod1");
  EXPECT_EQ(z.state(), "Ready") << z.state_reason();
  table = NftListIn(netns_.get(), list);
  EXPECT_NE(table.find("ip saddr 192.0.2.0/24"), std::string::npos) << table;
  zv::ApplyPolicyRequest apply;
  apply.set_zone_name("pod1");
  apply.set_policy_toml(policy("198.51.100.0/24:443"));
  zv::ApplyPolicyResponse applied;
  {
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->ApplyPolicy(&ctx, apply, &applied);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  table = NftListIn(netns_.get(), list);
  EXPECT_NE(table.find("ip saddr 198.51.100.0/24"), std::string::npos) << table;
  EXPECT_NE(table.find("dport 443 accept"), std::string::npos) << table;
  EXPECT_EQ(table.find("192.0.2.0"), std::string::npos) << table;

  zv::DeleteZoneRequest del;
  del.set_name("pod1");
  zv::DeleteZoneResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
  // The namespace (held by the test) is still there; the zone's table is not.
  EXPECT_EQ(NftListIn(netns_.get(), list), "");
  std::string tables = NftListIn(netns_.get(), "list tables");
  EXPECT_EQ(tables.find("rauha_"), std::string::npos) << tables;
}

// Rules a zone in a pod's namespace enforces there (allowed_ingress and allowed_zones: its nftables
// table; allowed_egress: cgroup-bpf) are not "without effect": CreateZone, ApplyPolicy, their
// policy.warning events and `rauha policy apply` say nothing of them. A zone of its own isolated
// network, given the same policy, still gets the warnings everywhere.
TEST_F(ZoneNetnsTest, RulesEnforcedInTheJoinedNamespaceAreNotWarnedAbout) {
  const std::string rules =
      "[network]\nmode = \"isolated\"\nallowed_zones = [\"peer\"]\n"
      "allowed_egress = [\"192.0.2.0/24:443\"]\nallowed_ingress = [\"198.51.100.0/24:80\"]\n";
  zv::WatchEventsRequest watch;
  grpc::ClientContext watch_ctx;
  auto events = daemon_->Zones()->WatchEvents(&watch_ctx, watch);
  events->WaitForInitialMetadata();

  zv::CreateZoneResponse pod;
  ASSERT_TRUE(Create("pod1", path_, rules, "", &pod).ok());
  EXPECT_EQ(pod.policy_warnings_size(), 0) << pod.policy_warnings(0);
  zv::CreateZoneResponse own;
  ASSERT_TRUE(Create("own", "", rules, "", &own).ok());
  std::string own_warnings;
  for (const auto& w : own.policy_warnings()) own_warnings += w + "\n";
  EXPECT_EQ(own.policy_warnings_size(), 3) << own_warnings;
  for (const char* field : {"allowed_zones", "allowed_egress", "allowed_ingress"}) {
    EXPECT_NE(own_warnings.find(std::string("network.") + field + " has no effect"),
              std::string::npos)
        << own_warnings;
  }
  // The pod zone's table holds the rule the old warning called void.
  EXPECT_NE(Get("pod1").network_rules().find("198.51.100.0/24"), std::string::npos)
      << Get("pod1").network_rules();

  std::vector<std::string> applied = ApplyWarnings("pod1", rules);
  EXPECT_TRUE(applied.empty()) << applied[0];
  EXPECT_EQ(ApplyWarnings("own", rules).size(), 3u);

  const std::string file = daemon_->dir() + "/rules.toml";
  std::ofstream(file) << rules;
  CliRun cli = CliApply("pod1", file);
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.err.find("warning"), std::string::npos) << cli.err;
  cli = CliApply("own", file);
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.err.find(file + ":5:19: warning: network.allowed_ingress has no effect"),
            std::string::npos)
      << cli.err;

  for (const char* name : {"pod1", "own"}) {
    zv::DeleteZoneRequest del;
    del.set_name(name);
    zv::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->DeleteZone(&ctx, del, &resp).ok());
  }
  // One bus, one queue per watcher, published in call order: each zone's warnings come before
  // its zone.deleted.
  std::map<std::string, int> warning_events;
  int deleted = 0;
  zv::ZoneEvent e;
  while (deleted < 2 && events->Read(&e)) {
    if (e.event_type() == "policy.warning") ++warning_events[e.zone_name()];
    if (e.event_type() == "zone.deleted") ++deleted;
  }
  watch_ctx.TryCancel();
  events->Finish();
  EXPECT_EQ(deleted, 2);
  EXPECT_EQ(warning_events["pod1"], 0);
  EXPECT_EQ(warning_events["own"], 9);  // CreateZone, ApplyPolicy, `rauha policy apply`
}

TEST_F(ZoneNetnsTest, BadHostnameIsRefusedAndChangesNothing) {
  auto bad = Create("badhost", "", "", "not_a_label");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("not_a_label"), std::string::npos) << bad.error_message();
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
