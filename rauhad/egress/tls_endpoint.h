// One TLS session the egress proxy holds, driven through memory BIOs so that the proxy's
// epoll loop keeps doing all socket I/O itself: ciphertext read from the socket is fed in,
// Pump() runs the handshake, decrypts what can be and encrypts what waits, and hands back the
// ciphertext to send. Nothing blocks; nothing is buffered inside OpenSSL unseen (the loop
// never has to ask SSL_pending).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace rauha::egress {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// The context of the proxy's sessions towards zones (certificates are set per session).
absl::StatusOr<SslCtxPtr> NewServerContext();
// The context of its sessions towards upstream servers: TLS 1.2+, peer verified against the
// host's default CA paths and, when not empty, the PEM file `extra_ca`.
absl::StatusOr<SslCtxPtr> NewClientContext(const std::string& extra_ca);

class TlsEndpoint {
 public:
  // Towards a zone: presents `cert` with `key`.
  static absl::StatusOr<std::unique_ptr<TlsEndpoint>> Server(SSL_CTX* ctx, X509* cert,
                                                             EVP_PKEY* key);
  // Towards `host`: sends it as SNI and requires a certificate for it.
  static absl::StatusOr<std::unique_ptr<TlsEndpoint>> Client(SSL_CTX* ctx, const std::string& host);
  ~TlsEndpoint();
  TlsEndpoint(const TlsEndpoint&) = delete;
  TlsEndpoint& operator=(const TlsEndpoint&) = delete;

  void Feed(const char* data, size_t size);  // ciphertext from the socket
  // Handshake, then: writes what it can of `plain_out` (erasing it), appends what it decrypts
  // to `plain_in` (at most about `max_in` bytes), appends ciphertext to send to `cipher_out`.
  // An error (a failed handshake, a bad record) is final; its message says why (the
  // certificate's verification result, for a client).
  absl::Status Pump(std::string& plain_in, size_t max_in, std::string& plain_out,
                    std::string& cipher_out);
  // close_notify, appended to `cipher_out`.
  void Close(std::string& cipher_out);
  bool handshake_done() const;
  bool peer_closed() const { return peer_closed_; }
  // Decrypted bytes that did not fit under max_in wait in OpenSSL's BIO: Pump again.
  bool has_buffered_input() const;

 private:
  explicit TlsEndpoint(SSL* ssl, bool client);
  void Drain(std::string& cipher_out);
  absl::Status Failure(int ret, std::string_view during);

  SSL* ssl_;
  BIO* rbio_;  // owned by ssl_
  BIO* wbio_;
  bool client_;
  bool peer_closed_ = false;
};

}  // namespace rauha::egress
