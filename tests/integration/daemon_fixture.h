// A private rauhad for one test: its own socket, run dir, state dir and cgroup parent, so
// tests never touch each other or a system daemon. Stopping it checks that nothing of ours is
// left in the kernel: no cgroup directory, no mount, no process.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "rauha/v1/container.grpc.pb.h"
#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace rauha::testing {

// True when RAUHA_TEST_REQUIRE_ALL=1: a missing feature must fail the test, not skip it.
bool RequireAll();

class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra_args = {});
  ~Daemon();

  // Runs rauhad (and so its bridge, veths and nftables table) in this network namespace, e.g.
  // "/run/netns/rauha-nettest-123". Set before Start().
  void set_netns(std::string path) { netns_ = std::move(path); }

  // Overrides the socket, run dir and state dir (defaults: below dir()). Set before Start().
  void set_paths(std::string socket, std::string run_dir, std::string state_dir) {
    socket_ = std::move(socket);
    run_dir_ = std::move(run_dir);
    state_dir_ = std::move(state_dir);
  }

  // Starts rauhad and waits until its socket answers. Fails the test on error.
  void Start();
  // Starts rauhad expecting it to refuse: its exit status, or -1 (after stopping it) when it
  // still runs after `timeout_ms`.
  int StartExpectingExit(int timeout_ms = 10000);
  // The next Start() leaves a socket file at socket() as it is (a crashed rauhad's, for a test
  // of rauhad replacing it) instead of removing it first.
  void keep_stale_socket_once() { keep_stale_socket_ = true; }
  // Arguments added to rauhad's command line from the next Start() on.
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // SIGTERM and wait: the clean stop. Returns how long rauhad took to exit, in ms.
  int64_t Stop();
  // SIGKILL and wait: a crash. Shims survive it.
  void Kill9();

  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  // This daemon's private bpffs directory (--bpf-pin-dir); it must be gone after a clean stop.
  const std::string& pin_dir() const { return pin_dir_; }
  std::string log() const;
  // A field of /proc/<rauhad>/status in KiB (e.g. "VmRSS", "VmHWM"), -1 if unreadable.
  int64_t StatusKiB(const std::string& field) const;
  // Threads of rauhad now (entries of /proc/<rauhad>/task).
  int ThreadCount() const;

  std::unique_ptr<rauha::zone::v1::ZoneService::Stub> Zones();
  // The id of zone `name` (GetZone); "" and a test failure with GetZone's error when it fails.
  std::string ZoneId(const std::string& name);
  std::unique_ptr<rauha::sandbox::v1::SandboxService::Stub> Sandbox();
  std::shared_ptr<grpc::Channel> Channel();

  // Every cgroup directory of this daemon's parent that exists now (should be none after stop).
  std::vector<std::string> LeftoverCgroups() const;
  // Mounts whose mount point or source mentions this daemon's directory.
  std::vector<std::string> LeftoverMounts() const;
  // Pids of processes whose command line mentions this daemon's directory (shims, rauhad).
  std::vector<pid_t> LeftoverProcesses() const;
  // The id of the one task the daemon lists once it really runs (its pid is known), or ""
  // after ~4 s without one.
  std::string WaitForRunningTask();

 private:
  std::vector<std::string> extra_args_;
  std::string dir_;
  std::string socket_;
  std::string run_dir_;
  std::string state_dir_;
  std::string cgroup_parent_;
  std::string pin_dir_;
  std::string netns_;
  pid_t pid_ = -1;
  bool keep_stale_socket_ = false;
};

// Fixture: a fresh daemon per test; TearDown stops it and asserts nothing is left behind.
class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  rauha::sandbox::v1::SandboxResult Run(const std::vector<std::string>& command,
                                        rauha::sandbox::v1::RunSandboxRequest request = {},
                                        grpc::Status* status_out = nullptr);
  grpc::Status CreateZone(const std::string& name, const std::string& policy_toml = "",
                          const std::string& zone_type = "");

  std::unique_ptr<Daemon> daemon_;
};

// Minimal policy text with overrides appended to the standard preset's [resources].
std::string PolicyWith(const std::string& resources_lines, const std::string& extra_tables = "",
                       const std::string& capabilities = "");

// True when the warm pool of `daemon` has said that the pooled zone `zone_id` can be claimed
// (its shim runs before that; a call made in between is not served from the pool).
bool PooledZoneReady(const Daemon& daemon, const std::string& zone_id);

}  // namespace rauha::testing
