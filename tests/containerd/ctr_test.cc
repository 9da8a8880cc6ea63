// `ctr run --runtime <containerd-shim-rauha-v2>` against a private containerd and a private
// rauhad: output through containerd's FIFOs, exact exit codes, SIGKILL from `ctr task kill`,
// unsupported calls refused clearly, and nothing left behind (shims, sockets, zones, mounts,
// cgroups: the rauhad fixture checks its own).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "containerd-shim-rauha-v2/bootstrap.h"
#include "rauha/v1/zone.grpc.pb.h"
#include "tests/containerd/containerd_fixture.h"
#include "tests/containerd/ctr_fixture.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

TEST_F(CtrTest, EchoOutputArrivesThroughContainerdFifos) {
  std::string out;
  ASSERT_EQ(Run("echo1", "/bin/busybox echo hello from a zone", &out), 0)
      << out << containerd_->log();
  EXPECT_EQ(out, "hello from a zone\n");
  // --rm deleted the container: containerd knows no task or container of that name.
  containerd_->Ctr("containers ls -q", &out);
  EXPECT_EQ(out.find("echo1"), std::string::npos) << out;
}

TEST_F(CtrTest, RunsOnTheImageRootfsNotTheHost) {
  std::string out;
  // The image holds only bin/busybox; the shim adds /proc, /dev, /tmp and /etc (hostname,
  // hosts). The host's /usr is not there.
  ASSERT_EQ(Run("rootfs1", "/bin/busybox ls /", &out), 0) << out;
  EXPECT_NE(out.find("bin\n"), std::string::npos) << out;
  EXPECT_NE(out.find("proc\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("usr"), std::string::npos) << out;
  // The zone's confinement applies: /proc shows the task's own pid namespace only.
  ASSERT_EQ(Run("rootfs2", "/bin/busybox sh -c 'ls /proc | grep -c ^[0-9]'", &out), 0) << out;
  EXPECT_LE(std::stoi(out), 4) << out;
}

TEST_F(CtrTest, ExitCodesAreExact) {
  std::string out;
  EXPECT_EQ(Run("exit0", "/bin/busybox true", &out), 0) << out;
  EXPECT_EQ(Run("exit1", "/bin/busybox false", &out), 1) << out;
  EXPECT_EQ(Run("exit42", "/bin/busybox sh -c 'exit 42'", &out), 42) << out;
  EXPECT_EQ(Run("selfkill", "/bin/busybox sh -c 'kill -KILL $$'", &out), 137) << out;
}

TEST_F(CtrTest, TaskKillSigkillEndsTheTaskWith137) {
  // `ctr run --rm` in the foreground returns the task's exit status once it ends.
  std::string run_out;
  auto run = std::async(std::launch::async,
                        [&] { return Run("sleeper", "/bin/busybox sleep 1000", &run_out); });
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    containerd_->Ctr("task ls", &out);
  } while (out.find("RUNNING") == std::string::npos && std::chrono::steady_clock::now() < deadline);
  ASSERT_NE(out.find("RUNNING"), std::string::npos) << out;
  ASSERT_EQ(containerd_->Ctr("task kill -s SIGKILL sleeper", &out), 0) << out;
  EXPECT_EQ(run.get(), 137) << run_out;
  containerd_->Ctr("containers ls -q", &out);
  EXPECT_EQ(out.find("sleeper"), std::string::npos) << "--rm left the container: " << out;
}

TEST_F(CtrTest, TaskKillSendsTheSignalAskedFor) {
  std::string run_out;
  auto run = std::async(std::launch::async,
                        [&] { return Run("term", "/bin/busybox sleep 1000", &run_out); });
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    containerd_->Ctr("task ls", &out);
  } while (out.find("RUNNING") == std::string::npos && std::chrono::steady_clock::now() < deadline);
  ASSERT_NE(out.find("RUNNING"), std::string::npos) << out;
  // ctr task ps lists the task's process by its pid.
  ASSERT_EQ(containerd_->Ctr("task ps term", &out), 0) << out;
  EXPECT_NE(out.find_first_of("123456789"), std::string::npos) << out;
  ASSERT_EQ(containerd_->Ctr("task kill -s SIGTERM term", &out), 0) << out;
  EXPECT_EQ(run.get(), 128 + SIGTERM) << run_out;
}

TEST_F(CtrTest, KilledShimStillEndsTheTaskAndLeavesNothing) {
  std::string out;
  ASSERT_EQ(Run("orphan", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  auto shims = containerd_->ShimPids();
  ASSERT_EQ(shims.size(), 1u);
  ASSERT_EQ(::kill(shims[0], SIGKILL), 0);
  // containerd sees the shim's connection close, runs `containerd-shim-rauha-v2 delete` and
  // reports the task stopped; the delete ends the process in rauhad and removes the zone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    containerd_->Ctr("task ls", &out);
  } while (out.find("orphan") != std::string::npos && out.find("STOPPED") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(out.find("orphan") == std::string::npos || out.find("STOPPED") != std::string::npos)
      << out;
  containerd_->Ctr("task rm orphan", &out);
  EXPECT_EQ(containerd_->Ctr("containers rm orphan", &out), 0) << out;
}

// True when the cgroup freezer holding `pid` (v1 freezer or v2 cgroup.freeze) is frozen.
bool Frozen(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    std::string state;
    if (controllers == "freezer") {
      std::ifstream(std::string("/sys/fs/cgroup/freezer") + path + "/freezer.state") >> state;
      if (state == "FROZEN") return true;
    } else if (controllers.empty()) {
      for (const char* root : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        state.clear();
        std::ifstream(root + path + "/cgroup.freeze") >> state;
        if (state == "1") return true;
      }
    }
  }
  return false;
}

TEST_F(CtrTest, PauseFreezesTheZoneResumeThawsItAndMetricsReportIt) {
  std::string out;
  ASSERT_EQ(Run("pz", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  // `ctr task ps`: a header line, then the task's pid (the host's).
  ASSERT_EQ(containerd_->Ctr("task ps pz", &out), 0) << out;
  pid_t pid = 0;
  {
    std::istringstream lines(out);
    std::string header, first;
    std::getline(lines, header);
    lines >> first;
    pid = std::atoi(first.c_str());
  }
  ASSERT_GT(pid, 0) << out;
  EXPECT_FALSE(Frozen(pid));
  ASSERT_EQ(containerd_->Ctr("task pause pz", &out), 0) << out;
  EXPECT_TRUE(Frozen(pid)) << "the zone's cgroup is not frozen after ctr task pause";
  containerd_->Ctr("task ls", &out);
  EXPECT_NE(out.find("PAUSED"), std::string::npos) << out;
  ASSERT_EQ(containerd_->Ctr("task resume pz", &out), 0) << out;
  EXPECT_FALSE(Frozen(pid));
  containerd_->Ctr("task ls", &out);
  EXPECT_NE(out.find("RUNNING"), std::string::npos) << out;
  // containerd decodes our io.containerd.cgroups.v1.Metrics: the zone's pids and memory.
  ASSERT_EQ(containerd_->Ctr("task metrics pz", &out), 0) << out;
  EXPECT_NE(out.find("pids.current"), std::string::npos) << out;
  EXPECT_NE(out.find("memory.usage_in_bytes"), std::string::npos) << out;
  ASSERT_EQ(containerd_->Ctr("task kill -s SIGKILL pz", &out), 0) << out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (containerd_->Ctr("task rm pz", &out) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(containerd_->Ctr("containers rm pz", &out), 0) << out;
}

TEST_F(CtrTest, CheckpointIsRefusedWithAReason) {
  std::string out;
  ASSERT_EQ(Run("nocp", "/bin/busybox sleep 1000", &out, "-d"), 0) << out;
  ASSERT_TRUE(WaitStatus("nocp", "RUNNING"));
  EXPECT_NE(containerd_->Ctr("task checkpoint nocp", &out), 0);
  EXPECT_NE(out.find("cannot be checkpointed"), std::string::npos) << out;
  KillAndRemove("nocp");
}

}  // namespace
}  // namespace rauha::testing
