// Socket paths that reach rauhad through one transport only, so a CLI test knows which path its
// command took: shared by the sandbox and run fast-path tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "rauha-common/shim_endpoint_path.h"

namespace rauha::testing {

// DIR/ttrpc-only.sock: its ".ttrpc" twin is rauhad's endpoint and it has no gRPC socket, so
// only the fast path reaches rauhad through it.
inline std::string TtrpcOnlySocket(const std::string& rauhad_socket, const std::string& dir) {
  const std::string socket = dir + "/ttrpc-only.sock";
  std::error_code ec;
  if (!std::filesystem::is_symlink(ShimEndpointPath(socket))) {
    std::filesystem::create_symlink(ShimEndpointPath(rauhad_socket), ShimEndpointPath(socket), ec);
  }
  EXPECT_FALSE(ec) << ec.message();
  return socket;
}

// DIR/grpc-only.sock: rauhad's gRPC socket with no ".ttrpc" twin (an rauhad from before the
// endpoint), so only gRPC reaches rauhad through it.
inline std::string GrpcOnlySocket(const std::string& rauhad_socket, const std::string& dir) {
  const std::string socket = dir + "/grpc-only.sock";
  std::error_code ec;
  if (!std::filesystem::is_symlink(socket))
    std::filesystem::create_symlink(rauhad_socket, socket, ec);
  EXPECT_FALSE(ec) << ec.message();
  return socket;
}

}  // namespace rauha::testing
