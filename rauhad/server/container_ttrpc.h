// rauha.container.v1.ContainerService/RunContainer on rauhad's ttrpc endpoint
// (shim_endpoint.h), for the `rauha` CLI's fast path: `rauha run` in the foreground without a
// gRPC client in the CLI process. ttrpc has no server streams, so each RunContainerResponse
// of the gRPC stream (the container's id, its output as it comes, the exit code) goes as a
// data frame (type 3, flags 0) on the request's stream, in the same order, and the answer
// frame ends the stream with the call's status (empty payload). The handler is the gRPC
// one (ContainerServiceImpl::RunContainer): same gate, checks, audit records, codes and
// messages; the request limited as gRPC's (kMaxRequestBytes; a string field that is not UTF-8
// is INVALID_ARGUMENT naming it). A client that reads slowly holds the container's output
// back (the data frame's write blocks, as gRPC's flow control does); a closed connection is a
// client gone away: the container runs on, as with gRPC.
//
// KillContainer too, for `rauha run`'s signal proxy on the same path (the same request and
// answer as gRPC's, the same handler).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "rauhad/server/container_service.h"

namespace rauha {

inline constexpr char kContainerServiceName[] = "rauha.container.v1.ContainerService";

// Output larger than this goes in several data frames (a frame holds at most ttrpc's 4 MiB).
inline constexpr size_t kRunContainerDataChunk = 1u << 20;

absl::StatusOr<std::string> RunContainerOverTtrpc(ContainerServiceImpl* containers,
                                                  const ttrpc::CallContext& ctx,
                                                  const std::string& payload);

absl::StatusOr<std::string> KillContainerOverTtrpc(ContainerServiceImpl* containers,
                                                   const ttrpc::CallContext& ctx,
                                                   const std::string& payload);

}  // namespace rauha
