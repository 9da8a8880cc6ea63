// Ed25519 keys for the audit log (OpenSSL): generate, load and save PEM, sign, verify. A key's
// id is the lowercase hex SHA-256 of its 32 raw public-key bytes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace rauha::audit {

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Standard base64 with padding, and back (InvalidArgument on anything else).
std::string Base64Encode(std::string_view data);
absl::StatusOr<std::string> Base64Decode(std::string_view text);

class PublicKey {
 public:
  // From a PEM SubjectPublicKeyInfo holding an Ed25519 key.
  static absl::StatusOr<PublicKey> FromPem(std::string_view pem);
  static absl::StatusOr<PublicKey> FromPemFile(const std::string& path);

  const std::string& id() const { return id_; }
  const std::string& pem() const { return pem_; }
  // True when `signature` (raw 64 bytes) is this key's signature of `message`.
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::string id_;
  std::string pem_;
};

class SigningKey {
 public:
  static absl::StatusOr<SigningKey> Generate();
  // From a PEM PKCS#8 private key holding an Ed25519 key.
  static absl::StatusOr<SigningKey> FromPemFile(const std::string& path);
  // Writes the private key as PEM, mode 0600, atomically (temp file + rename).
  absl::Status SavePem(const std::string& path) const;

  const PublicKey& public_key() const { return public_; }
  // The raw 64-byte Ed25519 signature of `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const;

 private:
  static absl::StatusOr<SigningKey> FromKey(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_;
};

}  // namespace rauha::audit
