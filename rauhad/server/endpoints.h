// rauhad's TCP listeners (--listen, beside the unix socket): which addresses, and with which
// credentials. TCP needs mutual TLS (gRPC's SSL server credentials, client certificates
// required and verified against --tls-client-ca), except on a loopback address when the
// operator says --insecure-loopback. Anything else is refused at start, before a port opens.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha {

struct TlsFiles {
  std::string cert;       // --tls-cert: rauhad's certificate chain (PEM)
  std::string key;        // --tls-key: its private key (PEM)
  std::string client_ca;  // --tls-client-ca: the CA(s) whose client certificates are accepted
  bool any() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

struct TcpListener {
  std::string address;  // as gRPC takes it: "127.0.0.1:9876", "[::1]:9876", "localhost:0"
  bool loopback = false;
  bool tls = false;
};

struct HostPort {
  std::string host;  // without brackets
  std::string port;
};

// "ADDR:PORT", "[IPv6]:PORT" or "localhost:PORT"; PORT 0 asks the kernel for a free port.
absl::StatusOr<HostPort> ParseHostPort(const std::string& text);
// An IPv4 or IPv6 literal in 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104, or "localhost".
bool IsLoopbackHost(const std::string& host);

// The listeners for `listen` (each --listen), or InvalidArgument saying what to change:
// a non-loopback address without the TLS flags, --insecure-loopback with a non-loopback
// address, some but not all TLS flags, or TLS flags together with --insecure-loopback.
absl::StatusOr<std::vector<TcpListener>> PlanTcpListeners(const std::vector<std::string>& listen,
                                                          const TlsFiles& tls,
                                                          bool insecure_loopback);

// Reads and checks the TLS files (PEM that parses, a key that matches the certificate, at
// least one CA certificate) and builds server credentials that require and verify a client
// certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsCredentials(const TlsFiles& tls);

}  // namespace rauha
