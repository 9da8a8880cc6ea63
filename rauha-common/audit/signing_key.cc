#include "rauha-common/audit/signing_key.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {
namespace {

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) { return {key, EVP_PKEY_free}; }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, StrCat("open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Hex(const unsigned char* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> RawPublic(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw)) {
    return absl::InvalidArgumentError("not an Ed25519 key");
  }
  return std::string(reinterpret_cast<char*>(raw), len);
}

absl::StatusOr<std::string> PublicPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return absl::InternalError("PEM_write_bio_PUBKEY failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof(digest));
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return absl::InvalidArgumentError("base64 length not a multiple of 4");
  for (char c : text) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return absl::InvalidArgumentError("not standard base64");
    }
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return absl::InvalidArgumentError("not standard base64");
  // EVP_DecodeBlock keeps the zero bytes that padding stands for.
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  // Round trip: refuses non-canonical encodings (stray bits in the last character, '=' inside).
  if (Base64Encode(out) != text) return absl::InvalidArgumentError("not canonical base64");
  return out;
}

absl::StatusOr<PublicKey> PublicKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (raw == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  auto key = Own(raw);
  if (EVP_PKEY_id(raw) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("not an Ed25519 public key");
  }
  RAUHA_ASSIGN_OR_RETURN(std::string bytes, RawPublic(raw));
  PublicKey out;
  out.key_ = key;
  out.id_ = Sha256Hex(bytes);
  RAUHA_ASSIGN_OR_RETURN(out.pem_, PublicPem(raw));
  return out;
}

absl::StatusOr<PublicKey> PublicKey::FromPemFile(const std::string& path) {
  RAUHA_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = FromPem(pem);
  if (!key.ok()) return Annotate(key.status(), path);
  return key;
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (!key_ || signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

absl::StatusOr<SigningKey> SigningKey::FromKey(std::shared_ptr<EVP_PKEY> key) {
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("not an Ed25519 private key");
  }
  RAUHA_ASSIGN_OR_RETURN(std::string pem, PublicPem(key.get()));
  RAUHA_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromPem(pem));
  SigningKey out;
  out.key_ = std::move(key);
  out.public_ = std::move(pub);
  return out;
}

absl::StatusOr<SigningKey> SigningKey::Generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) return absl::InternalError("Ed25519 key generation failed");
  return FromKey(Own(raw));
}

absl::StatusOr<SigningKey> SigningKey::FromPemFile(const std::string& path) {
  RAUHA_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (raw == nullptr) return absl::InvalidArgumentError(StrCat(path, ": not a PEM private key"));
  auto key = FromKey(Own(raw));
  if (!key.ok()) return Annotate(key.status(), path);
  return key;
}

absl::Status SigningKey::SavePem(const std::string& path) const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("PEM_write_bio_PrivateKey failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, StrCat("create ", tmp));
  bool ok = ::write(fd, data, static_cast<size_t>(len)) == len && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("write ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, StrCat("rename ", tmp));
  return absl::OkStatus();
}

absl::StatusOr<std::string> SigningKey::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return absl::InternalError("EVP_DigestSignInit failed");
  }
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError("EVP_DigestSign failed");
  }
  sig.resize(len);
  return sig;
}

}  // namespace rauha::audit
