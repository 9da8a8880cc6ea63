// One RunSandbox call of `rauha sandbox`, over either of rauhad's two sockets:
//
// - the fast path: rauhad's ttrpc endpoint (<socket>.ttrpc, rauhad/server/shim_endpoint.h),
//   one unix socket connection, one request frame, one answer. No gRPC client starts in the
//   process: its threads, the HTTP/2 handshake (a round trip with rauhad's gRPC threads before
//   the request can go) and their teardown at exit were ~2.3 of the CLI's 4.3 ms of CPU and
//   2-4 ms of wall-clock under load (eval/bench/README.md, "The CLI's fast path");
// - gRPC on the socket, as every other command: when the fast path is not there (an older
//   rauhad, --host, a socket rauhad does not serve this user on, RAUHA_NO_FAST_PATH=1).
//
// Both give the same SandboxCall for the same request: rauhad runs the same handler for
// either, and the CLI prints and exits from the SandboxCall alone.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "rauha-cli/client.h"
#include "rauha-cli/fast_path.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cli {

struct SandboxCall {
  grpc::Status status;  // the call's outcome, with gRPC's codes (ttrpc uses the same)
  rauha::sandbox::v1::SandboxResult result;
  std::string task_id;          // rauhad's id of the task, sent once it was recorded; or ""
  int cancelled_by_signal = 0;  // SIGINT / SIGTERM that cancelled the call (signals.h)
};

// The call over rauhad's ttrpc endpoint, or nullopt when that path is not available and
// nothing was sent: fast path disabled, --host/RAUHA_HOST set, no endpoint or a refused
// connect, an endpoint that would not serve this user (it admits root and rauhad's own uid,
// SO_PEERCRED), a request too large for a ttrpc frame, or a rauhad that does not offer
// RunSandbox there (Unimplemented). The caller then makes the call over gRPC.
std::optional<SandboxCall> RunSandboxOverTtrpc(const ClientOptions& options,
                                               const rauha::sandbox::v1::RunSandboxRequest& req);

// The call over gRPC; the error is that of Connect ("cannot reach rauhad at ...").
absl::StatusOr<SandboxCall> RunSandboxOverGrpc(const ClientOptions& options,
                                               const rauha::sandbox::v1::RunSandboxRequest& req);

// The fast path if it is there, else gRPC.
absl::StatusOr<SandboxCall> RunSandboxCall(const ClientOptions& options,
                                           const rauha::sandbox::v1::RunSandboxRequest& req);

}  // namespace rauha::cli
