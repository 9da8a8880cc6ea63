// Processes started from a container's spec (rauha.process.v1, for containerd-shim-rauha-v2):
// each runs through the zone's shim on the root filesystem and stdio the caller gives,
// confined like any task of the zone (its cgroup, capabilities, seccomp, Landlock, devices,
// eBPF). One collector thread per process waits on the shim (which answers when the process
// ends: no polling) and keeps the end until DeleteProcess.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "rauha/v1/process.pb.h"
#include "rauhad/host_path.h"
#include "rauhad/zone_manager.h"

namespace rauha {

class ProcessRunner {
 public:
  // `rules`: the host-path rules a spec's bind of a host path must pass (process_mounts.h).
  explicit ProcessRunner(ZoneManager* zones, HostPathRules rules = {})
      : zones_(zones), rules_(std::move(rules)) {}
  ~ProcessRunner() { Stop(); }

  // InvalidArgument for a bad id, paths or empty args; NotFound for an unknown zone;
  // AlreadyExists for an id in use; the shim's error when it cannot start the process.
  absl::StatusOr<uint32_t> Start(const rauha::process::v1::StartProcessRequest& request);
  // Blocks until the process ends (Cancelled when `cancelled` turns true first).
  absl::StatusOr<rauha::process::v1::WaitProcessResponse> Wait(
      const std::string& id, const std::function<bool()>& cancelled);
  absl::Status Kill(const std::string& id, int signal);
  absl::Status Delete(const std::string& id);
  // Stops waiting for the shims (the processes keep running in their zones) and joins.
  void Stop();

 private:
  struct Process {
    std::string id;
    std::string zone_id;
    std::string shim_socket;
    uint32_t pid = 0;
    bool done = false;
    rauha::process::v1::WaitProcessResponse end;
    std::thread collector;
  };
  void Collect(std::shared_ptr<Process> process);

  ZoneManager* zones_;
  HostPathRules rules_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Process>> processes_;
};

}  // namespace rauha
