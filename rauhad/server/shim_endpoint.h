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
#pragma once

#include <string>

#include "absl/status/status.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "rauhad/server/process_service.h"
#include "rauhad/server/zone_service.h"

namespace rauha {

class ShimEndpoint {
 public:
  ShimEndpoint(ZoneServiceImpl* zones, ProcessServiceImpl* processes);
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
