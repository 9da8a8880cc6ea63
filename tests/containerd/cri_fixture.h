// The CRI test fixture (label containerd): a private containerd (CRI plugin on) in a network
// namespace the test makes, CNI bridge + host-local pod networking with addresses the test
// assigns, images imported from tarballs the test builds (no pulls), and a private rauhad;
// TearDown checks that nothing is left (pods, shims, zones, mounts, containerd's shared dirs).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cri-api/runtime/v1/api.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha/v1/zone.grpc.pb.h"
#include "tests/containerd/containerd_fixture.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"

namespace rauha::testing {

namespace fs = std::filesystem;
namespace cri = runtime::v1;

constexpr char kCniNetwork[] = "rauha-cri-test";
constexpr char kPodSubnet[] = "10.77.0.0/24";  // only inside the test's network namespace
constexpr char kPodGateway[] = "10.77.0.1";
constexpr char kPodPrefix[] = "10.77.0.";

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A new network namespace with lo up, made on a thread of ours (unshare acts on the calling
// thread only), held by the returned fd.
inline UniqueFd MakeNetworkNamespace() {
  UniqueFd fd;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (sock && ::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags |= IFF_UP;
      ::ioctl(sock.get(), SIOCSIFFLAGS, &ifr);
    }
    fd.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  }).join();
  return fd;
}

// Processes whose network namespace is `inode` now.
inline std::vector<pid_t> ProcessesInNetns(ino_t inode) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st;
    if (::stat((entry.path() / "ns/net").c_str(), &st) == 0 && st.st_ino == inode) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

// True once none of `pids` is in network namespace `inode` any more (gone, or elsewhere);
// waits up to 10 s (a zone's processes end just after its deletion answers). Checked per
// process that held it, not by scanning for the inode: the kernel reuses a freed namespace's
// inode number at once, for anyone's new namespace.
inline bool LeftNetns(const std::vector<pid_t>& pids, ino_t inode) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    bool any = false;
    for (pid_t pid : pids) {
      struct stat st;
      std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
      any = any || (::stat(ns.c_str(), &st) == 0 && st.st_ino == inode);
    }
    if (!any) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// `policy` with the line `line` replaced by `with` ("" when `line` is not in it).
inline std::string ReplaceLine(std::string policy, const std::string& line,
                               const std::string& with) {
  auto at = policy.find(line);
  if (at == std::string::npos) return "";
  return policy.replace(at, line.size(), with);
}

class CriTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    char tmpl[] = "/tmp/rauha-cri-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    netns_ = MakeNetworkNamespace();
    ASSERT_TRUE(netns_) << "cannot make the test's network namespace";
    fs::create_directories(dir_ + "/cni");
    // bridge + host-local: a veth into each pod's own netns, addresses from our subnet; the
    // bridge lives in containerd's (the test's) namespace. No masquerade, no host route.
    std::ofstream(dir_ + "/cni/10-rauha.conflist") << R"({
  "cniVersion": "0.4.0",
  "name": ")" << kCniNetwork << R"(",
  "plugins": [{
    "type": "bridge", "bridge": "rauhacri0", "isGateway": true, "ipMasq": false,
    "ipam": {"type": "host-local", "dataDir": ")" << dir_
                                                   << R"(/ipam",
             "ranges": [[{"subnet": ")" << kPodSubnet
                                                   << R"(", "gateway": ")" << kPodGateway
                                                   << R"("}]]}
  }]
})";
    containerd_ = std::make_unique<Containerd>(dir_ + "/containerd", daemon_->socket());
    CriSetup setup;
    setup.sandbox_image = "localhost/pause:v1";
    setup.cni_conf_dir = dir_ + "/cni";
    setup.shim_dir = fs::path(CSHIM_BIN).parent_path();
    // The repo's presets, plus "pod-egress": standard, allowed to reach port 7000 of pods.
    setup.policy_dir = dir_ + "/policies";
    fs::copy(std::string(RAUHA_SOURCE_DIR) + "/policies", setup.policy_dir);
    std::string standard = ReadAll(setup.policy_dir + "/standard.toml");
    auto egress = standard.find("allowed_egress = []");
    ASSERT_NE(egress, std::string::npos);
    std::ofstream(setup.policy_dir + "/pod-egress.toml") << std::string(standard).replace(
        egress, std::string("allowed_egress = []").size(),
        std::string("allowed_egress = [\"") + kPodSubnet + ":7000\"]");
    // "pod-ingress": standard, reachable on port 7000 from the pods' subnet.
    std::ofstream(setup.policy_dir + "/pod-ingress.toml")
        << ReplaceLine(standard, "allowed_ingress = []",
                       std::string("allowed_ingress = [\"") + kPodSubnet + ":7000\"]");
    // "pod-peer": standard, reachable from zone "pod-client" (by its pod's address), only.
    std::ofstream(setup.policy_dir + "/pod-peer.toml")
        << ReplaceLine(standard, "allowed_zones = []", "allowed_zones = [\"pod-client\"]");
    setup.netns_fd = netns_.get();
    ConfigureCri(setup);
    containerd_->EnableCri(setup);
    std::string error;
    ASSERT_TRUE(containerd_->Start(&error)) << error;

    // The pause image: busybox sleeping until CRI kills it. The app image: busybox.
    std::string out;
    LayoutBuilder pause(dir_ + "/pause-layout");
    pause.Tag(
        pause.AddImage({{{{"bin/busybox", BusyboxBinary()}}, LayoutBuilder::Compression::kNone}},
                       "amd64", "2026-01-02T03:04:05Z",
                       R"({"Entrypoint": ["/bin/busybox", "sleep", "2147483647"]})"),
        "v1");
    ASSERT_TRUE(containerd_->ImportLayoutAs(pause.dir(), "k8s.io", "localhost/pause", &out)) << out;
    LayoutBuilder app(dir_ + "/app-layout");
    app.Tag(app.AddImage({{{{"bin/busybox", BusyboxBinary()}}, LayoutBuilder::Compression::kNone}},
                         "amd64", "2026-01-02T03:04:05Z",
                         R"({"Cmd": ["/bin/busybox", "sh"], "Env": ["PATH=/bin"]})"),
            "v1");
    ASSERT_TRUE(containerd_->ImportLayoutAs(app.dir(), "k8s.io", "localhost/busybox", &out)) << out;

    auto channel =
        grpc::CreateChannel(containerd_->cri_address(), grpc::InsecureChannelCredentials());
    runtime_ = cri::RuntimeService::NewStub(channel);
    WaitCriReady();
  }

  // CRI answers once its plugin is up and the CNI config is loaded (30 s at most).
  void WaitCriReady() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool ready = false;
    while (!ready && std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext ctx;
      cri::StatusRequest req;
      cri::StatusResponse resp;
      if (runtime_->Status(&ctx, req, &resp).ok()) {
        ready = true;
        for (const auto& c : resp.status().conditions()) ready = ready && c.status();
      }
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(ready) << "CRI not ready within 30 s\n" << containerd_->log();
  }

  // Lets a test add to the CRI setup (runtime options).
  virtual void ConfigureCri(CriSetup&) {}

  void TearDown() override {
    if (containerd_ && runtime_) {
      // A test that failed half-way: its pods go all the same (and that is a failure).
      grpc::ClientContext ctx;
      cri::ListPodSandboxResponse pods;
      if (runtime_->ListPodSandbox(&ctx, {}, &pods).ok()) {
        for (const auto& p : pods.items()) {
          ADD_FAILURE() << "pod " << p.id() << " left by the test";
          StopAndRemove(p.id());
        }
      }
    }
    if (containerd_) {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!containerd_->ShimPids().empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      EXPECT_TRUE(containerd_->ShimPids().empty()) << "a shim outlived its pod";
      for (pid_t pid : containerd_->ShimPids()) ::kill(pid, SIGKILL);
      containerd_->Stop();
      for (const auto& d : containerd_->LeftoverSharedDirs()) ADD_FAILURE() << d << " left behind";
    }
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
      EXPECT_EQ(line.find(dir_), std::string::npos) << "mount left: " << line;
    }
    rauha::zone::v1::ListZonesResponse zones;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
    EXPECT_EQ(zones.zones_size(), 0) << zones.DebugString();
    netns_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
    DaemonTest::TearDown();
  }

  cri::PodSandboxConfig PodConfig(const std::string& name,
                                  const std::map<std::string, std::string>& annotations = {}) {
    cri::PodSandboxConfig config;
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_namespace_("default");
    config.mutable_metadata()->set_uid("uid-" + name);
    config.set_hostname(name);
    config.set_log_directory(dir_ + "/logs/" + name);
    for (const auto& [k, v] : annotations) (*config.mutable_annotations())[k] = v;
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        cri::POD);
    return config;
  }

  // RunPodSandbox with `handler`; the pod's id, or "" (a test failure) on error.
  std::string RunPod(const cri::PodSandboxConfig& config, const std::string& handler = "rauha") {
    fs::create_directories(config.log_directory());
    grpc::ClientContext ctx;
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    req.set_runtime_handler(handler);
    cri::RunPodSandboxResponse resp;
    grpc::Status s = runtime_->RunPodSandbox(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message() << "\n" << containerd_->log();
    return resp.pod_sandbox_id();
  }

  void StopAndRemove(const std::string& pod) {
    {
      grpc::ClientContext ctx;
      cri::StopPodSandboxRequest req;
      req.set_pod_sandbox_id(pod);
      cri::StopPodSandboxResponse resp;
      grpc::Status s = runtime_->StopPodSandbox(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << "StopPodSandbox: " << s.error_message();
    }
    grpc::ClientContext ctx;
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    cri::RemovePodSandboxResponse resp;
    grpc::Status s = runtime_->RemovePodSandbox(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "RemovePodSandbox: " << s.error_message();
  }

  // The pod's status with containerd's verbose info (its runtime spec) parsed.
  nlohmann::json PodInfo(const std::string& pod, cri::PodSandboxStatus* status) {
    grpc::ClientContext ctx;
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod);
    req.set_verbose(true);
    cri::PodSandboxStatusResponse resp;
    grpc::Status s = runtime_->PodSandboxStatus(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    *status = resp.status();
    auto info = resp.info().find("info");
    return nlohmann::json::parse(info == resp.info().end() ? std::string() : info->second, nullptr,
                                 false);
  }

  // The network namespace path the pod's runtime spec gives its sandbox (CNI's).
  std::string PodNetnsPath(const std::string& pod) {
    cri::PodSandboxStatus status;
    nlohmann::json info = PodInfo(pod, &status);
    for (const auto& ns : info["runtimeSpec"]["linux"]["namespaces"]) {
      if (ns.value("type", "") == "network") return ns.value("path", "");
    }
    return "";
  }

  std::string PodIp(const std::string& pod) {
    cri::PodSandboxStatus status;
    PodInfo(pod, &status);
    return status.network().ip();
  }

  // CreateContainer + StartContainer of busybox running `command`; the container's id.
  std::string StartContainer(const std::string& pod, const cri::PodSandboxConfig& pod_config,
                             const std::string& name, const std::vector<std::string>& command) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_sandbox_config() = pod_config;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("localhost/busybox:v1");
    for (const auto& arg : command) c->add_command(arg);
    c->set_log_path(name + ".log");
    cri::CreateContainerResponse created;
    {
      grpc::ClientContext ctx;
      grpc::Status s = runtime_->CreateContainer(&ctx, req, &created);
      EXPECT_TRUE(s.ok()) << "CreateContainer: " << s.error_message() << "\n" << containerd_->log();
      if (!s.ok()) return "";
    }
    grpc::ClientContext ctx;
    cri::StartContainerRequest start;
    start.set_container_id(created.container_id());
    cri::StartContainerResponse started;
    grpc::Status s = runtime_->StartContainer(&ctx, start, &started);
    EXPECT_TRUE(s.ok()) << "StartContainer: " << s.error_message() << "\n" << containerd_->log();
    return created.container_id();
  }

  // Waits (60 s at most) until the container has exited; its status.
  cri::ContainerStatus WaitExited(const std::string& id) {
    cri::ContainerStatus status;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext ctx;
      cri::ContainerStatusRequest req;
      req.set_container_id(id);
      cri::ContainerStatusResponse resp;
      if (runtime_->ContainerStatus(&ctx, req, &resp).ok()) {
        status = resp.status();
        if (status.state() == cri::CONTAINER_EXITED) return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "container " << id << " did not exit within 60 s: " << status.DebugString();
    return status;
  }

  // The container's CRI log once it holds `needle` (CRI copies the FIFOs asynchronously; the
  // container has exited, so its whole output is on its way). 30 s at most.
  std::string WaitLog(const std::string& path, const std::string& needle) {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      text = ReadAll(path);
      if (text.find(needle) != std::string::npos) return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return text;
  }

  std::vector<std::string> ZoneNames() {
    rauha::zone::v1::ListZonesResponse zones;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
    std::vector<std::string> names;
    for (const auto& z : zones.zones()) names.push_back(z.name());
    return names;
  }

  std::string dir_;
  UniqueFd netns_;
  std::unique_ptr<Containerd> containerd_;
  std::unique_ptr<cri::RuntimeService::Stub> runtime_;
};

}  // namespace rauha::testing
