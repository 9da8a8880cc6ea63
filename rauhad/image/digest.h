// Content digests ("sha256:<64 lowercase hex>") and incremental SHA-256 (OpenSSL), so blobs
// are hashed while they stream and never held whole in memory.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace rauha::image {

// OK for "sha256:<64 lowercase hex>"; InvalidArgument naming `what` otherwise (other
// algorithms are refused: registries and layouts we read use sha256).
absl::Status CheckDigest(std::string_view digest, std::string_view what = "digest");
inline bool IsDigest(std::string_view digest) { return CheckDigest(digest).ok(); }

// The 64 hex characters of a valid digest.
inline std::string DigestHex(std::string_view digest) { return std::string(digest.substr(7)); }

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // "sha256:<hex>" of everything fed so far; the hasher can keep going afterwards.
  std::string Digest() const;
  void Reset();

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

std::string Sha256Digest(std::string_view data);

}  // namespace rauha::image
