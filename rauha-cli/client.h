// The CLI's connection to rauhad: which socket, a channel that is known to be connected, and
// gRPC errors as the one line a user reads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace rauha::cli {

inline constexpr char kDefaultSocket[] = "/run/rauha/rauhad.sock";

// Global options shared by every command that talks to rauhad.
struct ClientOptions {
  std::string socket;            // --socket; empty: env RAUHA_SOCKET, else kDefaultSocket
  std::string host;              // --host ADDR:PORT; empty: env RAUHA_HOST, else the socket
  std::string tls_ca;            // --tls-ca: CA of rauhad's certificate (turns TLS on)
  std::string tls_cert;          // --tls-cert: this client's certificate (mutual TLS)
  std::string tls_key;           // --tls-key: its private key
  double connect_timeout_s = 5;  // --timeout-connect
};

// --host if given, else $RAUHA_HOST if set and non-empty, else "" (the unix socket).
std::string ResolveHost(const std::string& flag);

// --socket if given, else $RAUHA_SOCKET if set and non-empty, else kDefaultSocket.
std::string ResolveSocketPath(const std::string& flag);

// A channel to rauhad that has connected (over TCP when a host is set, with TLS when --tls-ca
// is given, else over the unix socket), or Unavailable with
// "cannot reach rauhad at <path>: is it running? (start it with: rauhad)" (or why not, when
// the socket is there but not usable, e.g. root-only). Fails at once when the socket is missing
// or refuses the connection; waits at most connect_timeout_s for an answer otherwise.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ClientOptions& options);

// "invalid argument", "not found", ... for a gRPC code.
std::string StatusCodeName(grpc::StatusCode code);

// "<code name>: <message>", e.g. `not found: zone "x" does not exist`.
std::string DescribeRpcError(const grpc::Status& status);

}  // namespace rauha::cli
