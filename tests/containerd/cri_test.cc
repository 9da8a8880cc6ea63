// Pods through containerd's CRI with RuntimeClass handler `rauha`: a private containerd (CRI
// plugin on) in a network namespace this test makes, CNI bridge + host-local pod networking
// with addresses the test assigns, images imported from tarballs the test builds (no pulls),
// and a private rauhad. Each pod is a zone k8s-<sandbox id[:12]>; its tasks live in the pod's
// CNI network namespace; stopping and removing the pod leaves nothing (zone, cgroups, netns,
// shims, mounts, containerd's shared directories). Pod to pod traffic follows the zones' egress
// and ingress rules.
#include "tests/containerd/cri_fixture.h"

namespace rauha::testing {
namespace {

TEST_F(CriTest, PodIsAZoneWhoseTasksSeeTheCniNetworkAndLogToCri) {
  auto config = PodConfig("web");
  std::string pod = RunPod(config);
  ASSERT_FALSE(pod.empty());
  std::string zone = "k8s-" + pod.substr(0, 12);

  // `rauha zone list` shows the pod.
  std::string out;
  ASSERT_EQ(
      RunShell(std::string(RAUHA_CLI_BIN) + " --socket " + daemon_->socket() + " zone list", &out),
      0)
      << out;
  EXPECT_NE(out.find(zone), std::string::npos) << out;
  rauha::zone::v1::GetZoneRequest get;
  get.set_name(zone);
  rauha::zone::v1::GetZoneResponse got;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->GetZone(&ctx, get, &got).ok());
  }

  // The pod's network namespace is the one its spec names (CNI's, under containerd's state
  // dir), with the address host-local gave it.
  std::string netns_path = PodNetnsPath(pod);
  ASSERT_FALSE(netns_path.empty());
  EXPECT_EQ(netns_path.find(dir_ + "/containerd/state/"), 0u) << netns_path;
  EXPECT_EQ(got.zone().network_namespace(), netns_path);
  struct stat netns_st;
  ASSERT_EQ(::stat(netns_path.c_str(), &netns_st), 0) << netns_path;
  std::string ip = PodIp(pod);
  ASSERT_EQ(ip.rfind(kPodPrefix, 0), 0u) << ip;
  // The zone's shim joined it (and so every task the zone starts).
  std::vector<pid_t> holders = ProcessesInNetns(netns_st.st_ino);
  EXPECT_NE(std::find(holders.begin(), holders.end(), static_cast<pid_t>(got.zone().shim_pid())),
            holders.end())
      << "zone shim " << got.zone().shim_pid() << " is not in " << netns_path;

  // A container of the pod: its output arrives in the CRI log file, and what it sees of the
  // network is the pod's namespace (same inode) with eth0 holding the pod's address.
  std::string c = StartContainer(pod, config, "probe",
                                 {"/bin/busybox", "sh", "-c",
                                  "echo hello-from-the-pod; readlink /proc/self/ns/net; "
                                  "/bin/busybox ip -4 -o addr show eth0; echo done-probing"});
  ASSERT_FALSE(c.empty());
  cri::ContainerStatus status = WaitExited(c);
  EXPECT_EQ(status.exit_code(), 0) << status.DebugString();
  std::string log = WaitLog(config.log_directory() + "/probe.log", "done-probing");
  EXPECT_NE(log.find(" stdout F hello-from-the-pod\n"), std::string::npos) << log;
  EXPECT_NE(log.find("net:[" + std::to_string(netns_st.st_ino) + "]"), std::string::npos)
      << "the container is not in the pod's netns " << netns_path << ":\n"
      << log;
  EXPECT_NE(log.find("eth0"), std::string::npos) << log;
  EXPECT_NE(log.find("inet " + ip + "/24"), std::string::npos) << log;
  // The app container ran in the pod's zone: no zone of its own.
  EXPECT_EQ(ZoneNames(), std::vector<std::string>{zone});

  // A failing container: its exit code reaches ContainerStatus.
  std::string failing =
      StartContainer(pod, config, "fails", {"/bin/busybox", "sh", "-c", "exit 3"});
  ASSERT_FALSE(failing.empty());
  EXPECT_EQ(WaitExited(failing).exit_code(), 3);

  StopAndRemove(pod);
  // The zone, its netns mount and every holder of the netns are gone.
  EXPECT_TRUE(ZoneNames().empty());
  EXPECT_FALSE(fs::exists(netns_path)) << netns_path;
  EXPECT_TRUE(LeftNetns(holders, netns_st.st_ino));
}

TEST_F(CriTest, TwoPodsAreTwoDisjointZonesAndPolicyAnnotationPicksAPreset) {
  auto config_a = PodConfig("alpha");
  auto config_b = PodConfig("beta", {{"rauha.io/policy", "strict"}});
  std::string a = RunPod(config_a);
  std::string b = RunPod(config_b);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::string zone_a = "k8s-" + a.substr(0, 12);
  std::string zone_b = "k8s-" + b.substr(0, 12);
  auto names = ZoneNames();
  std::sort(names.begin(), names.end());
  std::vector<std::string> want = {zone_a, zone_b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(names, want);

  // Disjoint: their own network namespaces and addresses.
  struct stat st_a, st_b;
  std::string netns_a = PodNetnsPath(a), netns_b = PodNetnsPath(b);
  ASSERT_EQ(::stat(netns_a.c_str(), &st_a), 0) << netns_a;
  ASSERT_EQ(::stat(netns_b.c_str(), &st_b), 0) << netns_b;
  EXPECT_NE(st_a.st_ino, st_b.st_ino);
  EXPECT_NE(PodIp(a), PodIp(b));
  std::vector<pid_t> holders_a = ProcessesInNetns(st_a.st_ino);
  std::vector<pid_t> holders_b = ProcessesInNetns(st_b.st_ino);
  EXPECT_FALSE(holders_a.empty());
  EXPECT_FALSE(holders_b.empty());

  // rauha.io/policy=strict: the zone's cgroup has the strict preset's limit (pids_max 128),
  // the other pod the default's.
  auto pids_max = [&](const std::string& zone) {
    rauha::zone::v1::ZoneStatsRequest req;
    req.set_zone_name(zone);
    rauha::zone::v1::ZoneStatsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = daemon_->Zones()->ZoneStats(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.pids_max();
  };
  EXPECT_EQ(pids_max(zone_b), 128u);
  EXPECT_NE(pids_max(zone_a), 128u);

  StopAndRemove(a);
  // Removing one pod leaves the other's zone alone.
  EXPECT_EQ(ZoneNames(), std::vector<std::string>{zone_b});
  StopAndRemove(b);
  EXPECT_TRUE(ZoneNames().empty());
  EXPECT_TRUE(LeftNetns(holders_a, st_a.st_ino));
  EXPECT_TRUE(LeftNetns(holders_b, st_b.st_ino));
}

// Containers of one pod reach each other on localhost; another pod reaches the pod's address
// exactly when its zone's policy allows that egress (cgroup-bpf connect4, which applies in the
// pod's CNI namespace as in any zone) and the server's allows that ingress (its nftables table
// in the pod's namespace: cri_pod_ingress_test.cc).
TEST_F(CriTest, PodNetworkingFollowsTheZonesPolicies) {
  auto server_config = PodConfig("server", {{"rauha.io/policy", "pod-ingress"}});
  std::string server = RunPod(server_config);
  ASSERT_FALSE(server.empty());
  std::string ip = PodIp(server);
  ASSERT_EQ(ip.rfind(kPodPrefix, 0), 0u) << ip;
  // Binding the wildcard address is allowed in any zone; each connection gets "pong".
  std::string listener = StartContainer(
      server, server_config, "server",
      {"/bin/busybox", "sh", "-c", "while :; do echo pong | /bin/busybox nc -l -p 7000; done"});
  ASSERT_FALSE(listener.empty());
  // Retried for up to 30 s: the server may not listen yet.
  auto fetch_loop = [](const std::string& host) -> std::vector<std::string> {
    return {"/bin/busybox", "sh", "-c",
            "for i in $(/bin/busybox seq 300); do /bin/busybox nc " + host +
                " 7000 </dev/null && exit 0; /bin/busybox sleep 0.1; done; exit 1"};
  };
  std::string local = StartContainer(server, server_config, "local", fetch_loop("127.0.0.1"));
  ASSERT_FALSE(local.empty());
  EXPECT_EQ(WaitExited(local).exit_code(), 0);
  std::string local_log = WaitLog(server_config.log_directory() + "/local.log", "pong");
  EXPECT_NE(local_log.find(" stdout F pong\n"), std::string::npos) << local_log;

  // The server listens now. A pod under the default policy (no allowed_egress) is refused at
  // connect, once and for good.
  auto denied_config = PodConfig("denied");
  std::string denied = RunPod(denied_config);
  ASSERT_FALSE(denied.empty());
  std::string refused =
      StartContainer(denied, denied_config, "client",
                     {"/bin/busybox", "sh", "-c", "/bin/busybox nc " + ip + " 7000 </dev/null"});
  ASSERT_FALSE(refused.empty());
  EXPECT_NE(WaitExited(refused).exit_code(), 0);
  std::string refused_log = WaitLog(denied_config.log_directory() + "/client.log", "nc");
  EXPECT_NE(refused_log.find("Operation not permitted"), std::string::npos) << refused_log;
  EXPECT_EQ(refused_log.find("pong"), std::string::npos) << refused_log;

  // A pod whose preset allows the pods' port 7000 gets through.
  auto allowed_config = PodConfig("allowed", {{"rauha.io/policy", "pod-egress"}});
  std::string allowed = RunPod(allowed_config);
  ASSERT_FALSE(allowed.empty());
  std::string client = StartContainer(allowed, allowed_config, "client", fetch_loop(ip));
  ASSERT_FALSE(client.empty());
  EXPECT_EQ(WaitExited(client).exit_code(), 0);
  std::string allowed_log = WaitLog(allowed_config.log_directory() + "/client.log", "pong");
  EXPECT_NE(allowed_log.find(" stdout F pong\n"), std::string::npos) << allowed_log;

  for (const auto& pod : {allowed, denied, server}) StopAndRemove(pod);
}

// ExecSync (kubectl exec without a terminal): a command in a running container of the pod,
// its stdout, stderr and exit code back through CRI, in the pod's network namespace.
TEST_F(CriTest, ExecSyncRunsInTheContainerAndReturnsItsOutput) {
  auto config = PodConfig("exec");
  std::string pod = RunPod(config);
  ASSERT_FALSE(pod.empty());
  struct stat netns_st;
  std::string netns_path = PodNetnsPath(pod);
  ASSERT_EQ(::stat(netns_path.c_str(), &netns_st), 0) << netns_path;
  std::string c = StartContainer(pod, config, "sleeper", {"/bin/busybox", "sleep", "600"});
  ASSERT_FALSE(c.empty());
  cri::ExecSyncRequest req;
  req.set_container_id(c);
  for (const char* arg :
       {"/bin/busybox", "sh", "-c",
        "echo to-stdout; echo to-stderr >&2; readlink /proc/self/ns/net; exit 3"}) {
    req.add_cmd(arg);
  }
  req.set_timeout(60);
  cri::ExecSyncResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = runtime_->ExecSync(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << containerd_->log();
  EXPECT_EQ(resp.exit_code(), 3);
  EXPECT_EQ(resp.stdout(), "to-stdout\nnet:[" + std::to_string(netns_st.st_ino) + "]\n");
  EXPECT_EQ(resp.stderr(), "to-stderr\n");
  // The container itself runs on.
  grpc::ClientContext status_ctx;
  cri::ContainerStatusRequest status_req;
  status_req.set_container_id(c);
  cri::ContainerStatusResponse status;
  ASSERT_TRUE(runtime_->ContainerStatus(&status_ctx, status_req, &status).ok());
  EXPECT_EQ(status.status().state(), cri::CONTAINER_RUNNING);
  StopAndRemove(pod);
}

// The handler's runtime options ConfigPath: a policy file for every rauha pod without an
// annotation.
class CriConfigPathTest : public CriTest {
 protected:
  void ConfigureCri(CriSetup& setup) override {
    std::string policy = ReadAll(std::string(RAUHA_SOURCE_DIR) + "/policies/strict.toml");
    ASSERT_FALSE(policy.empty());
    setup.config_path = dir_ + "/rauha-policy.toml";
    std::ofstream(setup.config_path) << policy;
  }
};

TEST_F(CriConfigPathTest, RuntimeOptionsConfigPathIsTheZonePolicy) {
  std::string pod = RunPod(PodConfig("configured"));
  ASSERT_FALSE(pod.empty());
  rauha::zone::v1::ZoneStatsRequest req;
  req.set_zone_name("k8s-" + pod.substr(0, 12));
  rauha::zone::v1::ZoneStatsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = daemon_->Zones()->ZoneStats(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.pids_max(), 128u);
  StopAndRemove(pod);
}

}  // namespace
}  // namespace rauha::testing
