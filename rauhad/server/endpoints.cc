#include "rauhad/server/endpoints.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "grpcpp/security/server_credentials.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

constexpr std::string_view kTlsFlags = "--tls-cert, --tls-key and --tls-client-ca";

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(StrCat(flag, " ", path, ": cannot read it"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM block of that kind";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(const std::string& text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("--listen ", text, ": ", why,
               " (expected ADDR:PORT, e.g. 127.0.0.1:9876, [::1]:9876 or localhost:9876)"));
  };
  HostPort hp;
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("an IPv6 address needs brackets and a port");
    }
    hp.host = text.substr(1, close - 1);
    colon = close + 1;
    in6_addr a6;
    if (inet_pton(AF_INET6, hp.host.c_str(), &a6) != 1) return bad("not an IPv6 address");
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    hp.host = text.substr(0, colon);
    if (hp.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
  }
  hp.port = text.substr(colon + 1);
  if (hp.host.empty()) return bad("no address (use 0.0.0.0 or [::] for every address)");
  if (hp.port.empty() || hp.port.size() > 5 ||
      hp.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(hp.port) > 65535) {
    return bad("the port is not a number from 0 to 65535");
  }
  return hp;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

absl::StatusOr<std::vector<TcpListener>> PlanTcpListeners(const std::vector<std::string>& listen,
                                                          const TlsFiles& tls,
                                                          bool insecure_loopback) {
  const bool use_tls = tls.any();
  if (use_tls && (tls.cert.empty() || tls.key.empty() || tls.client_ca.empty())) {
    return absl::InvalidArgumentError(
        StrCat("mutual TLS needs all of ", kTlsFlags, "; some are missing"));
  }
  if (use_tls && insecure_loopback) {
    return absl::InvalidArgumentError(
        StrCat("--insecure-loopback and ", kTlsFlags,
               " exclude each other: the TLS flags make every --listen address use mutual TLS"));
  }
  if (listen.empty() && (use_tls || insecure_loopback)) {
    return absl::InvalidArgumentError(
        "the TLS flags and --insecure-loopback apply to --listen addresses; none is given");
  }
  std::vector<TcpListener> out;
  for (const auto& text : listen) {
    auto hp = ParseHostPort(text);
    if (!hp.ok()) return hp.status();
    TcpListener l;
    l.loopback = IsLoopbackHost(hp->host);
    l.tls = use_tls;
    l.address = hp->host.find(':') != std::string::npos ? StrCat("[", hp->host, "]:", hp->port)
                                                        : StrCat(hp->host, ":", hp->port);
    if (!use_tls && !l.loopback) {
      return absl::InvalidArgumentError(
          StrCat("--listen ", text,
                 " is not a loopback address: TCP beyond this machine needs mutual "
                 "TLS (",
                 kTlsFlags, "); rauhad refuses to serve it without"));
    }
    if (!use_tls && !insecure_loopback) {
      return absl::InvalidArgumentError(
          StrCat("--listen ", text, " has no TLS: give ", kTlsFlags,
                 ", or --insecure-loopback to serve this loopback address without authentication"));
    }
    out.push_back(std::move(l));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsCredentials(const TlsFiles& tls) {
  auto cert = ReadPem("--tls-cert", tls.cert);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem("--tls-key", tls.key);
  if (!key.ok()) return key.status();
  auto ca = ReadPem("--tls-client-ca", tls.client_ca);
  if (!ca.ok()) return ca.status();

  // gRPC would only say that the server failed to start: name the file and the problem.
  ERR_clear_error();
  std::unique_ptr<X509, X509Free> x509(
      PEM_read_bio_X509(MemBio(*cert).get(), nullptr, nullptr, nullptr));
  if (!x509) {
    return absl::InvalidArgumentError(
        StrCat("--tls-cert ", tls.cert, ": not a PEM certificate: ", OpenSslError()));
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(
      PEM_read_bio_PrivateKey(MemBio(*key).get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(
        StrCat("--tls-key ", tls.key, ": not an unencrypted PEM private key: ", OpenSslError()));
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        StrCat("--tls-key ", tls.key, " is not the key of the certificate in ", tls.cert));
  }
  std::unique_ptr<X509, X509Free> ca_cert(
      PEM_read_bio_X509(MemBio(*ca).get(), nullptr, nullptr, nullptr));
  if (!ca_cert) {
    return absl::InvalidArgumentError(
        StrCat("--tls-client-ca ", tls.client_ca, ": no PEM certificate: ", OpenSslError()));
  }

  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

}  // namespace rauha
