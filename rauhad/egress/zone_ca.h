// A zone's own certificate authority, for the hosts its [secrets] name: the egress proxy ends
// the zone's TLS to such a host with a leaf certificate this CA signs (made on first use per
// host, then cached), so it can put the secret into the request. rauhad makes the CA when the
// zone gets secrets and keeps it across restarts sealed on disk (zone_ca_store.h), never in the
// zone; the zone trusts its certificate through the bundle rauhad writes (TrustBundle).
// EC P-256 keys; the CA is constrained to path length 0.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "rauhad/secrets/secret_cipher.h"

namespace rauha::egress {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

class ZoneCa {
 public:
  static absl::StatusOr<std::unique_ptr<ZoneCa>> Create(const std::string& zone_name);
  // A CA from its stored key and certificate (PEM); DataLoss when they are not a pair. Leaves
  // get a new key.
  static absl::StatusOr<std::unique_ptr<ZoneCa>> FromPem(std::string_view key_pem,
                                                         const std::string& cert_pem);
  // The CA's private key, PEM (PKCS#8, unencrypted: the caller seals it); wiped when it goes.
  absl::StatusOr<secrets::SecretBytes> KeyPem() const;

  // The CA certificate, PEM.
  const std::string& cert_pem() const { return cert_pem_; }
  // The leaf for `host` (a DNS name, or a dotted quad): made on first use, then the same.
  absl::StatusOr<X509*> LeafFor(const std::string& host);
  // The one key of every leaf of this CA.
  EVP_PKEY* leaf_key() const { return leaf_key_.get(); }

 private:
  ZoneCa() = default;
  PkeyPtr ca_key_, leaf_key_;
  X509Ptr ca_cert_;
  std::string cert_pem_;
  std::mutex mu_;
  std::map<std::string, X509Ptr> leaves_;
};

// `host_bundle` (the host's CA bundle, PEM; may be empty) followed by `ca_pem`, written to
// `path` (0644: the zone reads it) by rename.
absl::Status WriteTrustBundle(const std::string& path, const std::string& host_bundle,
                              const std::string& ca_pem);

}  // namespace rauha::egress
