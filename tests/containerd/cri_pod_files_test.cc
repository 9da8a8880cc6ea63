// The files CRI writes for a pod reach its containers through the spec's binds
// (containerd-shim-rauha-v2/spec_mounts.h): /etc/hosts, /etc/hostname and /etc/resolv.conf
// from containerd's sandbox directory, the pod's shared /dev/shm; the pod's hostname is its
// zone's UTS hostname; DNS config lands in resolv.conf; a hostPath outside the zone's
// host-path rules is refused; no_new_privs stays set whatever the spec says.
#include "tests/containerd/cri_fixture.h"

namespace rauha::testing {
namespace {

// The container's stdout from its CRI log ("<time> stdout F <line>" per line).
std::string StdoutOf(const std::string& log) {
  std::string out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find(" stdout F ");
    if (at == std::string::npos) continue;
    out += line.substr(at + 10) + "\n";
  }
  return out;
}

// The sections of `text` between lines "@@".
std::vector<std::string> Sections(const std::string& text) {
  std::vector<std::string> parts(1);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line == "@@") {
      parts.emplace_back();
    } else {
      parts.back() += line + "\n";
    }
  }
  return parts;
}

TEST_F(CriTest, ContainersSeeThePodsCriFilesHostnameDnsAndSharedShm) {
  auto config = PodConfig("files");
  config.set_hostname("pod-host-1");
  auto* dns = config.mutable_dns_config();
  dns->add_servers("10.77.0.53");
  dns->add_searches("rauha.test");
  dns->add_options("ndots:2");
  std::string pod = RunPod(config);
  ASSERT_FALSE(pod.empty());
  const std::string sandbox_dir =
      dir_ + "/containerd/root/io.containerd.grpc.v1.cri/sandboxes/" + pod;
  const std::string shm_dir =
      dir_ + "/containerd/state/io.containerd.grpc.v1.cri/sandboxes/" + pod + "/shm";
  std::string hosts = ReadAll(sandbox_dir + "/hosts");
  std::string hostname_file = ReadAll(sandbox_dir + "/hostname");
  std::string resolv = ReadAll(sandbox_dir + "/resolv.conf");
  ASSERT_FALSE(hosts.empty()) << sandbox_dir << "/hosts";
  ASSERT_EQ(hostname_file, "pod-host-1\n");
  ASSERT_NE(resolv.find("nameserver 10.77.0.53"), std::string::npos) << resolv;

  // The zone's hostname is the pod's.
  rauha::zone::v1::GetZoneRequest get;
  get.set_name("k8s-" + pod.substr(0, 12));
  rauha::zone::v1::GetZoneResponse got;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->GetZone(&ctx, get, &got).ok());
  }
  EXPECT_EQ(got.zone().hostname(), "pod-host-1");

  std::string reader =
      StartContainer(pod, config, "reader",
                     {"/bin/busybox", "sh", "-c",
                      "cat /etc/hosts; echo @@; cat /etc/hostname; echo @@; hostname; echo @@; "
                      "cat /etc/resolv.conf; echo @@; grep NoNewPrivs /proc/self/status; echo @@; "
                      "echo from-the-reader > /dev/shm/shared && echo shm-written; echo @@"});
  ASSERT_FALSE(reader.empty());
  EXPECT_EQ(WaitExited(reader).exit_code(), 0);
  std::string out = StdoutOf(WaitLog(config.log_directory() + "/reader.log", "shm-written"));
  std::vector<std::string> parts = Sections(out);
  ASSERT_GE(parts.size(), 6u) << out;
  // Byte for byte what CRI wrote on the host.
  EXPECT_EQ(parts[0], hosts);
  EXPECT_EQ(parts[1], hostname_file);
  // `hostname` asks the kernel: the pod's UTS namespace has the pod's hostname.
  EXPECT_EQ(parts[2], "pod-host-1\n");
  EXPECT_EQ(parts[3], resolv);
  EXPECT_NE(parts[3].find("search rauha.test"), std::string::npos) << parts[3];
  EXPECT_NE(parts[3].find("options ndots:2"), std::string::npos) << parts[3];
  // CRI leaves noNewPrivileges false (allowPrivilegeEscalation's default): the zone keeps it.
  EXPECT_EQ(parts[4], "NoNewPrivs:\t1\n");
  EXPECT_EQ(parts[5], "shm-written\n");

  // /dev/shm is the pod's (CRI's tmpfs in its state dir), shared by its containers.
  EXPECT_EQ(ReadAll(shm_dir + "/shared"), "from-the-reader\n");
  std::string peer =
      StartContainer(pod, config, "peer", {"/bin/busybox", "cat", "/dev/shm/shared"});
  ASSERT_FALSE(peer.empty());
  EXPECT_EQ(WaitExited(peer).exit_code(), 0);
  EXPECT_EQ(StdoutOf(WaitLog(config.log_directory() + "/peer.log", "from-the-reader")),
            "from-the-reader\n");

  // A hostPath the zone's host-path rules refuse (/etc): the container does not start, and
  // the error says why.
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_sandbox_config() = config;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("hostetc");
  c->mutable_image()->set_image("localhost/busybox:v1");
  c->add_command("/bin/busybox");
  c->add_command("true");
  c->set_log_path("hostetc.log");
  auto* m = c->add_mounts();
  m->set_container_path("/hostetc");
  m->set_host_path("/etc");
  m->set_readonly(true);
  cri::CreateContainerResponse created;
  {
    grpc::ClientContext ctx;
    grpc::Status s = runtime_->CreateContainer(&ctx, req, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  grpc::ClientContext ctx;
  cri::StartContainerRequest start;
  start.set_container_id(created.container_id());
  cri::StartContainerResponse started;
  grpc::Status s = runtime_->StartContainer(&ctx, start, &started);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("/etc is refused"), std::string::npos) << s.error_message();

  StopAndRemove(pod);
  EXPECT_FALSE(fs::exists(sandbox_dir)) << sandbox_dir;
}

// Kubelet's termination message file: CRI binds a regular host file of kubelet's at
// /dev/termination-log, and what the container writes there must be in that host file once it
// exited (kubelet reads the message from there). A file with a second hard link is refused: a
// link could make any file of the host writable.
TEST_F(CriTest, TerminationLogReachesTheHostFile) {
  auto config = PodConfig("terminates");
  std::string pod = RunPod(config);
  ASSERT_FALSE(pod.empty());
  auto start = [&](const std::string& name, const std::string& host_file, const std::string& script,
                   std::string* id) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_sandbox_config() = config;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("localhost/busybox:v1");
    for (const char* arg : {"/bin/busybox", "sh", "-c"}) c->add_command(arg);
    c->add_command(script);
    c->set_log_path(name + ".log");
    auto* m = c->add_mounts();
    m->set_container_path("/dev/termination-log");
    m->set_host_path(host_file);
    cri::CreateContainerResponse created;
    {
      grpc::ClientContext ctx;
      grpc::Status s = runtime_->CreateContainer(&ctx, req, &created);
      if (!s.ok()) return s;
    }
    *id = created.container_id();
    grpc::ClientContext ctx;
    cri::StartContainerRequest start_req;
    start_req.set_container_id(created.container_id());
    cri::StartContainerResponse started;
    return runtime_->StartContainer(&ctx, start_req, &started);
  };

  // Kubelet makes the file (empty) in its own directory before it creates the container.
  std::string host_file = dir_ + "/kubelet/termination-log";
  fs::create_directories(dir_ + "/kubelet");
  { std::ofstream touch(host_file); }
  std::string id;
  grpc::Status s = start("says-bye", host_file,
                         "echo bye from the pod > /dev/termination-log; echo wrote-it", &id);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << containerd_->log();
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  std::string log = WaitLog(config.log_directory() + "/says-bye.log", "wrote-it");
  EXPECT_NE(log.find("wrote-it"), std::string::npos) << log;
  EXPECT_EQ(ReadAll(host_file), "bye from the pod\n");

  std::string linked = dir_ + "/kubelet/linked";
  { std::ofstream touch(linked); }
  ASSERT_EQ(::link(linked.c_str(), (dir_ + "/kubelet/second-link").c_str()), 0);
  s = start("linked", linked, "echo overwritten > /dev/termination-log", &id);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("one link"), std::string::npos) << s.error_message();
  EXPECT_EQ(ReadAll(linked), "");

  StopAndRemove(pod);
}

}  // namespace
}  // namespace rauha::testing
