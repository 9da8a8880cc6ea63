// The key that seals stored secrets, and the sealing: AES-256-GCM (OpenSSL EVP) with a fresh
// random 96-bit nonce per value and the secret's name as additional data, so a sealed value
// copied to another name's row does not open. The key is 32 random bytes in a file of its own
// (never in the database), mode 0600, made on first use.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::secrets {

// Bytes wiped (OPENSSL_cleanse) when they go: a key or a secret's value.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}
  SecretBytes& operator=(const SecretBytes& other);
  ~SecretBytes();
  const std::string& view() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }

 private:
  void Wipe();
  std::string bytes_;
};

class SecretCipher {
 public:
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kNonceBytes = 12;
  static constexpr size_t kTagBytes = 16;

  // The key in `path`, made (0600, parents 0700) when `create` and it does not exist yet.
  // Refused: a key file that is not a regular file of exactly kKeyBytes, one that group or
  // others may read, or one another user owns (FailedPrecondition naming the file and the fix).
  // Without `create`, a missing file is NotFound.
  static absl::StatusOr<SecretCipher> Load(const std::string& path, bool create);

  // nonce || ciphertext || tag.
  absl::StatusOr<std::string> Seal(std::string_view name, std::string_view value) const;
  // DataLoss when the tag does not verify (another key, another name, a changed row).
  absl::StatusOr<SecretBytes> Open(std::string_view name, std::string_view sealed) const;

 private:
  explicit SecretCipher(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

// Lowercase hex SHA-256 of `value`.
std::string Sha256Hex(std::string_view value);

}  // namespace rauha::secrets
