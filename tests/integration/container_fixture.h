// The fixture of the container tests: a loopback docker-registry with an image of
// busybox-static pushed by skopeo (once per suite), and per test a fresh rauhad that has
// pulled it, with helpers for ContainerService calls, the CLI and the leftovers checks.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rauha/v1/container.grpc.pb.h"
#include "rauha/v1/image.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"

namespace rauha::testing {

namespace cpb = rauha::container::v1;
namespace ipb = rauha::image::v1;
namespace zpb = rauha::zone::v1;

using namespace std::chrono_literals;

inline constexpr auto kDeadline = 30s;
inline constexpr char kImageConfig[] =
    R"({"Cmd": ["/bin/busybox", "sh", "-c", "echo from-cmd $FROM_IMAGE; /bin/busybox pwd"],)"
    R"( "Env": ["PATH=/bin", "FROM_IMAGE=image-env"], "WorkingDir": "/srv"})";

// Processes whose mount table mentions `needle` (an overlay of a container's upper dir).
inline std::vector<pid_t> ProcessesMounting(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::string mounts = ReadWholeFile("/proc/" + std::string(e->d_name) + "/mountinfo");
    if (mounts.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

class ContainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    for (const char* tool : {"docker-registry", "skopeo"}) {
      if (RunProgram({"sh", "-c", std::string("command -v ") + tool}) != 0) return;
    }
    tmp_ = new TempTree();
    registry_ = new TestRegistry(tmp_->path() + "/registry", {});
    if (!registry_->ok()) return;
    LayoutBuilder layout(tmp_->path() + "/layout");
    // pty_probe: a miniature `script` (tests/pty_probe), for /dev/pts inside containers.
    auto image = layout.AddImage({{{{"bin/busybox", BusyboxBinary()},
                                    {"bin/pty_probe", ReadWholeFile(RAUHA_PTY_PROBE_BIN)}}}},
                                 "amd64", "2026-01-02T03:04:05Z", kImageConfig);
    layout.Tag(image, "v1");
    pushed_ = registry_->Push(layout.dir(), "v1", "test/busybox:v1", &push_output_);
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    delete tmp_;
    tmp_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0 || registry_ == nullptr || !registry_->ok()) {
      if (RequireAll()) FAIL() << "needs root, docker-registry and skopeo";
      GTEST_SKIP() << "needs root, docker-registry and skopeo";
    }
    ASSERT_TRUE(pushed_) << push_output_;
    StartDaemon();
  }

  void TearDownDaemon() {
    if (!daemon_) return;
    daemon_->Stop();
    EXPECT_TRUE(daemon_->LeftoverProcesses().empty()) << "processes left after rauhad stopped";
    EXPECT_TRUE(daemon_->LeftoverMounts().empty()) << "mounts left after rauhad stopped";
    EXPECT_TRUE(daemon_->LeftoverCgroups().empty()) << "cgroups left after rauhad stopped";
    for (pid_t pid : daemon_->LeftoverProcesses()) ::kill(pid, SIGKILL);
    daemon_.reset();
  }

  void TearDown() override { TearDownDaemon(); }

  // A fresh rauhad (state of its own) with the test image pulled into it.
  void StartDaemon(std::vector<std::string> args = {}) {
    daemon_ = std::make_unique<Daemon>(std::move(args));
    daemon_->Start();
    containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
    image_ = registry_->host() + "/test/busybox:v1";
    grpc::ClientContext ctx;
    ipb::PullRequest req;
    req.set_reference(image_);
    auto reader = ipb::ImageService::NewStub(daemon_->Channel())->Pull(&ctx, req);
    ipb::PullProgress p;
    while (reader->Read(&p)) {
    }
    grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::string State() const { return daemon_->dir() + "/state"; }

  grpc::Status Create(const std::vector<std::string>& command, std::string* id,
                      const std::string& zone = "", const std::string& name = "",
                      bool open_stdin = false, bool auto_remove = false) {
    cpb::CreateContainerRequest req;
    req.set_zone_name(zone);
    req.set_name(name);
    req.set_image(image_);
    for (const auto& c : command) req.add_command(c);
    req.set_open_stdin(open_stdin);
    req.set_auto_remove(auto_remove);
    grpc::ClientContext ctx;
    cpb::CreateContainerResponse resp;
    grpc::Status s = containers_->CreateContainer(&ctx, req, &resp);
    if (s.ok()) {
      *id = resp.container_id();
      EXPECT_EQ(resp.state(), "Created");
    }
    return s;
  }
  grpc::Status Start(const std::string& id) {
    grpc::ClientContext ctx;
    cpb::StartContainerRequest req;
    req.set_container_id(id);
    cpb::StartContainerResponse resp;
    return containers_->StartContainer(&ctx, req, &resp);
  }
  grpc::Status Stop(const std::string& id, uint32_t timeout) {
    grpc::ClientContext ctx;
    cpb::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout_seconds(timeout);
    cpb::StopContainerResponse resp;
    return containers_->StopContainer(&ctx, req, &resp);
  }
  grpc::Status Delete(const std::string& id, bool force) {
    grpc::ClientContext ctx;
    cpb::DeleteContainerRequest req;
    req.set_container_id(id);
    req.set_force(force);
    cpb::DeleteContainerResponse resp;
    return containers_->DeleteContainer(&ctx, req, &resp);
  }
  grpc::Status Get(const std::string& id, cpb::ContainerInfo* info) {
    grpc::ClientContext ctx;
    cpb::GetContainerRequest req;
    req.set_container_id(id);
    cpb::GetContainerResponse resp;
    grpc::Status s = containers_->GetContainer(&ctx, req, &resp);
    *info = resp.container();
    return s;
  }
  // Polls until the container reports `state` (a condition, not a sleep).
  cpb::ContainerInfo WaitForState(const std::string& id, const std::string& state) {
    cpb::ContainerInfo info;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Get(id, &info).ok() && info.state() == state) return info;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "container " << id << " never reached " << state << " (is " << info.state()
                  << ")";
    return info;
  }
  // The container named `name` once it is Running (polled, with a deadline); an info without
  // an id if it never is.
  cpb::ContainerInfo WaitForRunningNamed(const std::string& name) {
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext ctx;
      cpb::ListContainersResponse all;
      if (containers_->ListContainers(&ctx, {}, &all).ok()) {
        for (const auto& c : all.containers()) {
          if (c.name() == name && c.state() == "Running") return c;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    return {};
  }
  // Creates and starts a container running `sleep 1000`: its pid once Running, 0 if it never
  // runs (the failure recorded).
  pid_t StartSleeper(bool auto_remove, std::string* id) {
    grpc::Status s = Create({"/bin/busybox", "sleep", "1000"}, id, "", "", false, auto_remove);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return 0;
    s = Start(*id);
    EXPECT_TRUE(s.ok()) << s.error_message();
    cpb::ContainerInfo info = WaitForState(*id, "Running");
    EXPECT_GT(info.pid(), 0u);
    return static_cast<pid_t>(info.pid());
  }
  std::vector<cpb::ContainerLogEntry> Logs(const std::string& id, bool follow, uint32_t tail,
                                           grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::ContainerLogsRequest req;
    req.set_container_id(id);
    req.set_follow(follow);
    req.set_tail(tail);
    auto reader = containers_->ContainerLogs(&ctx, req);
    std::vector<cpb::ContainerLogEntry> out;
    cpb::ContainerLogEntry e;
    while (reader->Read(&e)) out.push_back(e);
    grpc::Status s = reader->Finish();
    if (status) *status = s;
    EXPECT_TRUE(status || s.ok()) << s.error_message();
    return out;
  }
  grpc::Status Exec(const std::string& id, const std::vector<std::string>& command,
                    cpb::ExecInContainerResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::ExecInContainerRequest req;
    req.set_container_id(id);
    for (const auto& c : command) req.add_command(c);
    (*req.mutable_env())["FROM_EXEC"] = "exec-env";
    return containers_->ExecInContainer(&ctx, req, resp);
  }
  grpc::Status CreateZone(const std::string& name) {
    grpc::ClientContext ctx;
    zpb::CreateZoneRequest req;
    req.set_name(name);
    zpb::CreateZoneResponse resp;
    return daemon_->Zones()->CreateZone(&ctx, req, &resp);
  }
  int ZoneCount() {
    grpc::ClientContext ctx;
    zpb::ListZonesResponse resp;
    EXPECT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &resp).ok());
    return resp.zones_size();
  }
  std::string Cli(const std::vector<std::string>& args, int* rc) {
    std::vector<std::string> argv = {RAUHA_CLI_BIN, "--socket", daemon_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    *rc = RunProgram(argv, &out);
    return out;
  }
  // Polls (a condition with a deadline) until the container is gone, then checks it left
  // nothing.
  void WaitGone(const std::string& id) {
    cpb::ContainerInfo info;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline &&
           Get(id, &info).error_code() != grpc::StatusCode::NOT_FOUND) {
      std::this_thread::sleep_for(20ms);
    }
    ExpectGone(id);
  }
  // The CLI's stdout and stderr apart, and its exit status (-1: not a normal exit).
  int CliSplit(const std::vector<std::string>& args, std::string* out, std::string* err) {
    std::vector<std::string> argv = {RAUHA_CLI_BIN, "--socket", daemon_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string base = daemon_->dir() + "/cli-" + std::to_string(::getpid());
    pid_t pid = SpawnCli(argv, base + ".out", base + ".err");
    int status = 0;
    ::waitpid(pid, &status, 0);
    *out = ReadWholeFile(base + ".out");
    *err = ReadWholeFile(base + ".err");
    ::unlink((base + ".out").c_str());
    ::unlink((base + ".err").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  static pid_t SpawnCli(const std::vector<std::string>& argv, const std::string& out,
                        const std::string& err) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int in = ::open("/dev/null", O_RDONLY);
      ::dup2(in, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }
  // After rm: no record, no files, no overlay in any mount namespace. The directory is out of
  // containers/ at once; rauhad's removal queue unlinks it from containers-removing/ after
  // the call, which this waits for (a condition with a deadline).
  void ExpectGone(const std::string& id) {
    cpb::ContainerInfo info;
    EXPECT_EQ(Get(id, &info).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_FALSE(std::filesystem::exists(State() + "/containers/" + id));
    EXPECT_TRUE(ProcessesMounting(State() + "/containers/" + id).empty());
    const std::string trashed = State() + "/containers-removing/" + id;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::filesystem::exists(trashed) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_FALSE(std::filesystem::exists(trashed)) << "its directory was never removed";
  }

  static inline TempTree* tmp_ = nullptr;
  static inline TestRegistry* registry_ = nullptr;
  static inline bool pushed_ = false;
  static inline std::string push_output_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<cpb::ContainerService::Stub> containers_;
  std::string image_;
};

}  // namespace rauha::testing
