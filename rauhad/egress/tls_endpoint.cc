#include "rauhad/egress/tls_endpoint.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

}  // namespace

absl::StatusOr<SslCtxPtr> NewServerContext() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return absl::InternalError(StrCat("SSL_CTX_new: ", OpenSslErrors()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // No ALPN answer: the client speaks HTTP/1.1 to us, which the rewriter reads.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx;
}

absl::StatusOr<SslCtxPtr> NewClientContext(const std::string& extra_ca) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return absl::InternalError(StrCat("SSL_CTX_new: ", OpenSslErrors()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return absl::InternalError(StrCat("the host's CA paths: ", OpenSslErrors()));
  }
  if (!extra_ca.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), extra_ca.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(StrCat("--egress-extra-ca ", extra_ca,
                                             ": no PEM CA certificate could be loaded (",
                                             OpenSslErrors(), ")"));
  }
  return ctx;
}

TlsEndpoint::TlsEndpoint(SSL* ssl, bool client) : ssl_(ssl), client_(client) {
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  // An empty read BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  BIO_set_mem_eof_return(wbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
}

TlsEndpoint::~TlsEndpoint() { SSL_free(ssl_); }

absl::StatusOr<std::unique_ptr<TlsEndpoint>> TlsEndpoint::Server(SSL_CTX* ctx, X509* cert,
                                                                 EVP_PKEY* key) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return absl::InternalError(StrCat("SSL_new: ", OpenSslErrors()));
  std::unique_ptr<TlsEndpoint> t(new TlsEndpoint(ssl, false));
  if (SSL_use_certificate(ssl, cert) != 1 || SSL_use_PrivateKey(ssl, key) != 1) {
    return absl::InternalError(StrCat("leaf certificate: ", OpenSslErrors()));
  }
  SSL_set_accept_state(ssl);
  return t;
}

absl::StatusOr<std::unique_ptr<TlsEndpoint>> TlsEndpoint::Client(SSL_CTX* ctx,
                                                                 const std::string& host) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return absl::InternalError(StrCat("SSL_new: ", OpenSslErrors()));
  std::unique_ptr<TlsEndpoint> t(new TlsEndpoint(ssl, true));
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1) {
    return absl::InternalError(StrCat("upstream name: ", OpenSslErrors()));
  }
  SSL_set_connect_state(ssl);
  return t;
}

void TlsEndpoint::Feed(const char* data, size_t size) {
  BIO_write(rbio_, data, static_cast<int>(size));
}

bool TlsEndpoint::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

bool TlsEndpoint::has_buffered_input() const {
  return SSL_pending(ssl_) > 0 || (handshake_done() && BIO_ctrl_pending(rbio_) > 0);
}

void TlsEndpoint::Drain(std::string& cipher_out) {
  char buf[16384];
  for (;;) {
    int n = BIO_read(wbio_, buf, sizeof(buf));
    if (n <= 0) break;
    cipher_out.append(buf, static_cast<size_t>(n));
  }
}

absl::Status TlsEndpoint::Failure(int ret, std::string_view during) {
  int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return absl::OkStatus();
  if (err == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    return absl::OkStatus();
  }
  std::string why = OpenSslErrors();
  if (client_) {
    long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      why = StrCat("its certificate did not verify: ", X509_verify_cert_error_string(verify));
    }
  }
  ERR_clear_error();
  return absl::UnavailableError(StrCat("TLS ", during, " failed: ", why));
}

absl::Status TlsEndpoint::Pump(std::string& plain_in, size_t max_in, std::string& plain_out,
                               std::string& cipher_out) {
  ERR_clear_error();
  if (!handshake_done()) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      absl::Status st = Failure(r, "handshake");
      Drain(cipher_out);  // an alert, or the next handshake message
      if (!st.ok() || !handshake_done()) return st;
    }
  }
  while (!plain_out.empty()) {
    int r = SSL_write(ssl_, plain_out.data(),
                      static_cast<int>(std::min<size_t>(plain_out.size(), 1 << 20)));
    if (r <= 0) {
      if (auto st = Failure(r, "write"); !st.ok()) return st;
      break;
    }
    plain_out.erase(0, static_cast<size_t>(r));
  }
  char buf[16384];
  while (!peer_closed_ && plain_in.size() < max_in) {
    int r = SSL_read(ssl_, buf, sizeof(buf));
    if (r <= 0) {
      if (auto st = Failure(r, "read"); !st.ok()) return st;
      break;
    }
    plain_in.append(buf, static_cast<size_t>(r));
  }
  Drain(cipher_out);
  return absl::OkStatus();
}

void TlsEndpoint::Close(std::string& cipher_out) {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  Drain(cipher_out);
}

}  // namespace rauha::egress
