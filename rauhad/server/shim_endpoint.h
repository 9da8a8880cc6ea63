// rauhad's ttrpc endpoint for containerd-shim-rauha-v2. One such shim runs per pod, so its
// memory counts: a gRPC client (gRPC, Abseil's many libraries, OpenSSL) cost each pod ~4 MiB
// PSS. This endpoint serves the calls the shim makes (rauha.zone.v1.ZoneService CreateZone,
// DeleteZone, PauseZone, ResumeZone, ZoneStats, GetPolicy, ApplyPolicy and
// rauha.process.v1.ProcessService StartProcess, WaitProcess, KillProcess, DeleteProcess) with
// the same request and response messages, through the same service implementation the gRPC
// handlers run, over ttrpc (the shim speaks it to containerd already) on a second unix socket:
// ShimEndpointPath(--socket), mode 0600, and only peers whose SO_PEERCRED uid is root or
// rauhad's own are served (the gRPC socket admits the same: its owner, and root). Not part of
// the public API (API.md): the wire contract is ours, between rauhad and its shim.
//
// It also serves rauha.sandbox.v1.SandboxService/RunSandbox for the `rauha` CLI's fast path
// (docs/api-extensions.md): a CLI process that starts no gRPC client saves its threads, the
// HTTP/2 handshake and their teardown: ~2.3 ms of CPU and 2-4 ms of wall-clock under load per
// `rauha sandbox` (eval/bench/README.md, "The CLI's fast path").
// Same gate, TaskRunner, checks, errors, audit and events as the gRPC call; the task's id goes
// ahead of the answer as ttrpc metadata (gRPC: initial metadata, kTaskIdMetadataKey); the
// request is limited as gRPC's (kMaxRequestBytes, invalid UTF-8 named by field), the answer
// may be up to kMaxRunSandboxResponse (gRPC's is unbounded; a result is at most ~10 MiB).
// And rauha.container.v1.ContainerService/RunContainer (its stream as data frames) and
// KillContainer for `rauha run`'s fast path and its signal proxy (container_ttrpc.h).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "rauhad/server/container_service.h"
#include "rauhad/server/process_service.h"
#include "rauhad/server/sandbox_service.h"
#include "rauhad/server/zone_service.h"

namespace rauha {

// The largest RunSandbox answer sent over ttrpc (and read by the CLI).
inline constexpr uint32_t kMaxRunSandboxResponse = 64u << 20;

class ShimEndpoint {
 public:
  // `sandboxes` null: RunSandbox is not served (Unimplemented); `containers` null: nor is
  // RunContainer (container_ttrpc.h).
  ShimEndpoint(ZoneServiceImpl* zones, ProcessServiceImpl* processes,
               SandboxServiceImpl* sandboxes = nullptr, ContainerServiceImpl* containers = nullptr);
  ~ShimEndpoint() { Shutdown(); }

  // Listens on `path` (a stale socket there is replaced) and serves on threads of its own.
  absl::Status Serve(const std::string& path);
  // Closes every connection (a blocked WaitProcess sees its caller gone and returns) and
  // waits up to a few seconds for the calls in flight to end; removes the socket.
  void Shutdown();

 private:
  ttrpc::Server server_;
  std::string path_;
};

}  // namespace rauha
