#include "rauhad/egress/zone_ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

constexpr long kCaDays = 3650;
constexpr long kLeafDays = 365;

absl::Status OpenSslFailure(std::string_view what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  return absl::InternalError(StrCat("zone CA: ", what, ": ", buf));
}

PkeyPtr NewEcKey() { return PkeyPtr(EVP_EC_gen("P-256")); }

absl::Status RandomSerial(X509* cert) {
  BIGNUM* bn = BN_new();
  if (bn == nullptr || BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == nullptr) {
    BN_free(bn);
    return OpenSslFailure("serial number");
  }
  BN_free(bn);
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslFailure(StrCat("extension ", OBJ_nid2sn(nid)));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : OpenSslFailure("X509_add_ext");
}

// A certificate for `key` named `cn`, valid from an hour ago (clocks differ) for `days`.
absl::StatusOr<X509Ptr> NewCert(EVP_PKEY* key, const std::string& cn, long days) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return OpenSslFailure("X509_new");
  RAUHA_RETURN_IF_ERROR(RandomSerial(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslFailure("X509_set_pubkey");
  return cert;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZoneCa>> ZoneCa::Create(const std::string& zone_name) {
  std::unique_ptr<ZoneCa> ca(new ZoneCa());
  ca->ca_key_ = NewEcKey();
  ca->leaf_key_ = NewEcKey();
  if (!ca->ca_key_ || !ca->leaf_key_) return OpenSslFailure("EC key generation");
  // The name says whose it is; it is no DNS name (CN of a CA is free text).
  std::string cn = StrCat("rauha egress CA of zone ", zone_name.substr(0, 32));
  RAUHA_ASSIGN_OR_RETURN(ca->ca_cert_, NewCert(ca->ca_key_.get(), cn, kCaDays));
  X509* c = ca->ca_cert_.get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) return OpenSslFailure("issuer");
  RAUHA_RETURN_IF_ERROR(AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RAUHA_RETURN_IF_ERROR(AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RAUHA_RETURN_IF_ERROR(AddExtension(c, c, NID_subject_key_identifier, "hash"));
  if (X509_sign(c, ca->ca_key_.get(), EVP_sha256()) == 0) return OpenSslFailure("signing the CA");
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_X509(bio, c) != 1) {
    BIO_free(bio);
    return OpenSslFailure("PEM");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  ca->cert_pem_.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  return ca;
}

absl::StatusOr<std::unique_ptr<ZoneCa>> ZoneCa::FromPem(std::string_view key_pem,
                                                        const std::string& cert_pem) {
  std::unique_ptr<ZoneCa> ca(new ZoneCa());
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  ca->ca_key_.reset(kb ? PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr) : nullptr);
  BIO_free(kb);
  BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  ca->ca_cert_.reset(cb ? PEM_read_bio_X509(cb, nullptr, nullptr, nullptr) : nullptr);
  BIO_free(cb);
  if (!ca->ca_key_ || !ca->ca_cert_) return OpenSslFailure("reading a stored CA");
  if (X509_check_private_key(ca->ca_cert_.get(), ca->ca_key_.get()) != 1) {
    ERR_clear_error();
    return absl::DataLossError("zone CA: the stored key is not the stored certificate's");
  }
  ca->leaf_key_ = NewEcKey();
  if (!ca->leaf_key_) return OpenSslFailure("EC key generation");
  ca->cert_pem_ = cert_pem;
  return ca;
}

absl::StatusOr<secrets::SecretBytes> ZoneCa::KeyPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, ca_key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    return OpenSslFailure("PEM (CA key)");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  secrets::SecretBytes out(std::string(data, static_cast<size_t>(n)));
  OPENSSL_cleanse(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

absl::StatusOr<X509*> ZoneCa::LeafFor(const std::string& host) {
  std::lock_guard lock(mu_);
  if (auto it = leaves_.find(host); it != leaves_.end()) return it->second.get();
  RAUHA_ASSIGN_OR_RETURN(X509Ptr leaf, NewCert(leaf_key_.get(), host.substr(0, 64), kLeafDays));
  X509* l = leaf.get();
  if (X509_set_issuer_name(l, X509_get_subject_name(ca_cert_.get())) != 1) {
    return OpenSslFailure("issuer");
  }
  in_addr a{};
  bool is_ip = ::inet_pton(AF_INET, host.c_str(), &a) == 1;
  RAUHA_RETURN_IF_ERROR(
      AddExtension(l, ca_cert_.get(), NID_subject_alt_name, StrCat(is_ip ? "IP:" : "DNS:", host)));
  RAUHA_RETURN_IF_ERROR(
      AddExtension(l, ca_cert_.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RAUHA_RETURN_IF_ERROR(
      AddExtension(l, ca_cert_.get(), NID_key_usage, "critical,digitalSignature"));
  RAUHA_RETURN_IF_ERROR(AddExtension(l, ca_cert_.get(), NID_ext_key_usage, "serverAuth"));
  RAUHA_RETURN_IF_ERROR(AddExtension(l, ca_cert_.get(), NID_authority_key_identifier, "keyid"));
  if (X509_sign(l, ca_key_.get(), EVP_sha256()) == 0) return OpenSslFailure("signing a leaf");
  leaves_[host] = std::move(leaf);
  return l;
}

absl::Status WriteTrustBundle(const std::string& path, const std::string& host_bundle,
                              const std::string& ca_pem) {
  std::string text = host_bundle;
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += "# rauha: this zone's egress CA (the proxy's certificates for hosts [secrets] name)\n";
  text += ca_pem;
  std::string tmp = StrCat(path, ".tmp");
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus(errno, StrCat("create ", tmp));
  if (::fchmod(fd.get(), 0644) != 0) return ErrnoStatus(errno, StrCat("chmod ", tmp));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(errno, StrCat("write ", tmp));
    off += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, StrCat("rename ", path));
  return absl::OkStatus();
}

}  // namespace rauha::egress
