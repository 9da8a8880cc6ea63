// Where rauhad's ttrpc endpoint for containerd-shim-rauha-v2 listens: beside its gRPC socket,
// the same path with ".ttrpc" appended (containerd names its own ttrpc socket that way).
#pragma once

#include <string>
#include <string_view>

namespace rauha {

inline std::string ShimEndpointPath(std::string_view grpc_socket) {
  return std::string(grpc_socket) + ".ttrpc";
}

}  // namespace rauha
