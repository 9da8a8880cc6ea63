#include "rauhad/image/digest.h"

#include "rauha-common/strcat.h"

namespace rauha::image {

absl::Status CheckDigest(std::string_view digest, std::string_view what) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.substr(0, kPrefix.size()) != kPrefix) {
    auto colon = digest.find(':');
    if (colon != std::string_view::npos && colon > 0) {
      return absl::InvalidArgumentError(
          StrCat(what, " \"", digest, "\": unsupported digest algorithm \"",
                 digest.substr(0, colon), "\" (only sha256 is supported)"));
    }
    return absl::InvalidArgumentError(
        StrCat(what, " \"", digest, "\" is not a digest (expected sha256:<64 hex digits>)"));
  }
  std::string_view hex = digest.substr(kPrefix.size());
  bool ok = hex.size() == 64;
  for (char c : hex) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return absl::InvalidArgumentError(StrCat(
        what, " \"", digest, "\" is not a digest (expected sha256: and 64 lowercase hex digits)"));
  }
  return absl::OkStatus();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { Reset(); }

void Sha256::Reset() { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }

std::string Sha256::Digest() const {
  std::unique_ptr<EVP_MD_CTX, CtxFree> copy(EVP_MD_CTX_new());
  EVP_MD_CTX_copy_ex(copy.get(), ctx_.get());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(copy.get(), md, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string Sha256Digest(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Digest();
}

}  // namespace rauha::image
