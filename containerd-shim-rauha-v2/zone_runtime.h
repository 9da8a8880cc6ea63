// The shim's side of rauhad (a gRPC client, like the CLI): the pod's zone and the processes
// run in it. This first version runs a task through SandboxService.RunSandbox, which blocks
// until the task ends and returns its exact exit code or signal (no polling); stdout and
// stderr arrive with the result. Cancelling the call makes rauhad SIGKILL the task.
// Not yet: the task's root is the zone's read-only view of the host system, not the rootfs
// containerd mounted; no live stdin/stdout stream, TTY, pause, exec (need new rauhad RPCs).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "containerd-shim-rauha-v2/bundle.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cshim {

class ZoneRuntime {
 public:
  explicit ZoneRuntime(std::string rauhad_socket) : socket_(std::move(rauhad_socket)) {}

  // Creates zone `name` with the preset policy `policy_preset` ("": rauhad's default); an
  // existing zone of that name is joined.
  absl::Status EnsureZone(const std::string& name, const std::string& policy_preset);
  // Removes the zone, killing what still runs in it; NotFound is OK.
  absl::Status RemoveZone(const std::string& name);
  // Runs `process` in zone `zone` and blocks until it ends. `ctx` lets another thread cancel.
  absl::StatusOr<rauha::sandbox::v1::SandboxResult> Run(const std::string& zone,
                                                        const BundleProcess& process,
                                                        grpc::ClientContext* ctx);

 private:
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel();
  std::string socket_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The policy TOML of preset `name` from $RAUHA_POLICY_DIR or /etc/rauha/policies;
// InvalidArgument for a name that is not [a-z0-9_-]+, NotFound for an unknown preset.
absl::StatusOr<std::string> ReadPolicyPreset(const std::string& name);

}  // namespace rauha::cshim
