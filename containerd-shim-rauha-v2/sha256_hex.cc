// OpenSSL's low-level SHA256_* on purpose: since OpenSSL 3 the one-shot SHA256() goes through
// EVP_Q_digest, which loads the provider machinery (and, linked statically, most of
// libcrypto) into every pod's shim for two short hashes.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "containerd-shim-rauha-v2/sha256_hex.h"

#include <openssl/sha.h>

namespace rauha::cshim {

std::string Sha256Hex(std::string_view bytes) {
  SHA256_CTX ctx;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, bytes.data(), bytes.size());
  SHA256_Final(digest, &ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace rauha::cshim
