// The fixture of the `ctr` tests: a private rauhad (DaemonTest), a private containerd with a
// busybox image imported as localhost/busybox:v1, and at the end the checks that nothing is
// left (shims, shared dirs, rootfs mounts, shim sockets, zones).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "containerd-shim-rauha-v2/bootstrap.h"
#include "rauha/v1/zone.grpc.pb.h"
#include "tests/containerd/containerd_fixture.h"
#include "tests/containerd/private_mounts.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"

namespace rauha::testing {

class CtrTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    char tmpl[] = "/tmp/rauha-ctr-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    containerd_ = std::make_unique<Containerd>(dir_ + "/containerd", daemon_->socket());
    std::string error;
    ASSERT_TRUE(containerd_->Start(&error)) << error;
    LayoutBuilder layout(dir_ + "/layout");
    auto image =
        layout.AddImage({{{{"bin/busybox", BusyboxBinary()}}, LayoutBuilder::Compression::kNone}});
    layout.Tag(image, "v1");
    std::string out;
    ASSERT_TRUE(containerd_->ImportLayout(layout.dir(), &out)) << out;
  }
  void TearDown() override {
    if (!containerd_) {  // SetUp stopped before there was one
      if (!dir_.empty()) std::filesystem::remove_all(dir_);
      DaemonTest::TearDown();
      return;
    }
    // Every test removes its containers; a shim still alive here is a leak.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!containerd_->ShimPids().empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(containerd_->ShimPids().empty()) << "a shim outlived its containers";
    // No rootfs mount of containerd's bundles is left (the shim or `delete` unmounted it).
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
      EXPECT_EQ(line.find(dir_), std::string::npos) << "mount left: " << line;
    }
    for (const auto& s : sockets_) EXPECT_FALSE(std::filesystem::exists(s)) << s << " left behind";
    RemoveLeftovers();
    for (const auto& d : containerd_->LeftoverSharedDirs()) ADD_FAILURE() << d << " left behind";
    // A lone container's zone goes with it.
    rauha::zone::v1::ListZonesResponse zones;
    grpc::ClientContext ctx;
    ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
    EXPECT_EQ(zones.zones_size(), 0) << zones.DebugString();
    DaemonTest::TearDown();
  }

  // What a test that died mid-way leaves of this fixture's own: the shims its containerd
  // started (SIGKILL by pid), containerd, and mounts under dir_ (a task's rootfs), deepest
  // first; then dir_ itself, once nothing is mounted in it (remove_all would reach through a
  // mount). Fails the test if anything stays.
  void RemoveLeftovers() {
    std::vector<pid_t> shims = containerd_->ShimPids();
    for (pid_t pid : shims) ::kill(pid, SIGKILL);
    // The killed ones must go. containerd, seeing a shim die, starts `shim delete` for it: a
    // new process of the same binary and address, which ends by itself; it is waited for
    // below, once containerd (which starts them) is stopped.
    auto killed_alive = [&] {
      std::vector<pid_t> alive;
      for (pid_t pid : containerd_->ShimPids()) {
        if (std::find(shims.begin(), shims.end(), pid) != shims.end()) alive.push_back(pid);
      }
      return alive;
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!killed_alive().empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (pid_t pid : killed_alive()) ADD_FAILURE() << "shim " << pid << " survived SIGKILL";
    if (!shims.empty()) {
      // Their sockets (outside dir_, /run/containerd/s) stay when they are killed.
      for (const auto& s : sockets_) ::unlink(s.c_str());
    }
    containerd_->Stop();
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!containerd_->ShimPids().empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (pid_t pid : containerd_->ShimPids())
      ADD_FAILURE() << "shim process " << pid
                    << " (a `shim delete`?) still runs 30 s after containerd stopped";
    for (const auto& error : UnmountAllUnder(dir_)) ADD_FAILURE() << "cannot unmount " << error;
    auto left = MountsUnder(dir_);
    ASSERT_TRUE(left.empty()) << left.size() << " mounts left under " << dir_ << ", first "
                              << left[0];
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    EXPECT_FALSE(ec) << "remove " << dir_ << ": " << ec.message();
  }

  // `ctr run` of busybox with our shim; returns ctr's exit status (the task's).
  int Run(const std::string& id, const std::string& command, std::string* out,
          const std::string& flags = "--rm") {
    sockets_.push_back(cshim::ShimSocketPath(containerd_->socket(), "default", id));
    return containerd_->Ctr("run " + flags + " --runtime " + CSHIM_BIN + " --fifo-dir " + dir_ +
                                "/fifo localhost/busybox:v1 " + id + " " + command,
                            out);
  }

  // Waits (60 s at most) until `ctr task ls` shows task `id` in `status` ("RUNNING").
  bool WaitStatus(const std::string& id, const std::string& status) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string out;
    while (std::chrono::steady_clock::now() < deadline) {
      containerd_->Ctr("task ls", &out);
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind(id + " ", 0) == 0 && line.find(status) != std::string::npos) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Kills task `id` (SIGKILL) and removes it and its container, waiting for the exit.
  void KillAndRemove(const std::string& id) {
    std::string out;
    containerd_->Ctr("task kill -s SIGKILL " + id, &out);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (containerd_->Ctr("task rm " + id, &out) != 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(containerd_->Ctr("containers rm " + id, &out), 0) << out;
  }

  std::string dir_;
  std::unique_ptr<Containerd> containerd_;
  std::vector<std::string> sockets_;
};

}  // namespace rauha::testing
