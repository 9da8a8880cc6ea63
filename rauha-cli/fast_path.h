// The CLI's fast path: calls over rauhad's private ttrpc endpoint (<socket>.ttrpc,
// rauhad/server/shim_endpoint.h) instead of gRPC, so the CLI process starts no gRPC client
// (its threads, the HTTP/2 handshake, their teardown at exit: most of a short command's own
// cost; eval/bench/README.md, "The CLI's fast path"). `rauha sandbox` (sandbox_call.h) and
// `rauha run` in the foreground (run_call.h) use it; each falls back to gRPC where it is not
// there.
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "rauha-cli/client.h"
#include "rauha-common/fd.h"

namespace rauha::cli {

// RAUHA_NO_FAST_PATH set to anything but "" or "0": every call goes over gRPC.
bool FastPathDisabled();

// A connection to rauhad's ttrpc endpoint that will serve this process, or nullopt when the
// call must go over gRPC: fast path disabled, --host/RAUHA_HOST set, no endpoint or a refused
// connect, or an endpoint that would not serve this user (it admits root and rauhad's own
// uid: the listener's SO_PEERCRED; anyone else would see the connection closed unread, which
// looks like a crash, where gRPC gives them the real answer).
std::optional<UniqueFd> ConnectFastPath(const ClientOptions& options);

// Whether `status` is the endpoint's own answer for a method it does not serve ("service S
// method M: not implemented", an older rauhad): nothing ran, the call may go over gRPC. A
// handler's own Unimplemented is the call's answer.
bool NotServedBy(const absl::Status& status, std::string_view service, std::string_view method);

// absl and gRPC share the canonical code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace rauha::cli
