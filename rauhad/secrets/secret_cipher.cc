#include "rauhad/secrets/secret_cipher.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::secrets {
namespace {

constexpr std::string_view kAadPrefix = "rauha-secret-v1:";

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

absl::Status MakeParents(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return absl::OkStatus();
  std::string dir = path.substr(0, slash);
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return absl::OkStatus();
  if (errno != ENOENT) return ErrnoStatus(errno, StrCat("mkdir ", dir));
  RAUHA_RETURN_IF_ERROR(MakeParents(dir));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("mkdir ", dir));
  }
  return absl::OkStatus();
}

absl::Status CreateKeyFile(const std::string& path) {
  RAUHA_RETURN_IF_ERROR(MakeParents(path));
  unsigned char key[SecretCipher::kKeyBytes];
  if (RAND_bytes(key, sizeof(key)) != 1) return absl::InternalError("RAND_bytes failed");
  // O_EXCL: two rauhads (or a race with an operator's own file) never overwrite a key.
  std::string tmp = StrCat(path, ".new");
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    OPENSSL_cleanse(key, sizeof(key));
    return ErrnoStatus(errno, StrCat("create secret key file ", tmp));
  }
  ssize_t n = ::write(fd.get(), key, sizeof(key));
  OPENSSL_cleanse(key, sizeof(key));
  if (n != static_cast<ssize_t>(sizeof(key)) || ::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("write secret key file ", tmp));
  }
  // link() fails if a key appeared meanwhile: that key wins and is loaded below.
  if (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("install secret key file ", path));
  }
  ::unlink(tmp.c_str());
  return absl::OkStatus();
}

}  // namespace

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.Wipe();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.Wipe();
  }
  return *this;
}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    Wipe();
    bytes_ = other.bytes_;
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

void SecretBytes::Wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

absl::StatusOr<SecretCipher> SecretCipher::Load(const std::string& path, bool create) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    if (!create) return absl::NotFoundError(StrCat("secret key file ", path, " does not exist"));
    RAUHA_RETURN_IF_ERROR(CreateKeyFile(path));
    fd.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd) return ErrnoStatus(errno, StrCat("open secret key file ", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", path));
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kKeyBytes)) {
    return absl::FailedPreconditionError(
        StrCat("secret key file ", path, " is not a regular file of ", kKeyBytes,
               " bytes: it is not a key rauhad made; move it away (the secrets sealed with it "
               "cannot be opened without it)"));
  }
  if ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid()) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::FailedPreconditionError(
        StrCat("secret key file ", path, " has mode ", mode, " and owner uid ", st.st_uid,
               ": it must be readable by rauhad's user only (chown it to uid ", ::geteuid(),
               " and chmod 600 it)"));
  }
  std::string key(kKeyBytes, '\0');
  ssize_t n = ::read(fd.get(), key.data(), key.size());
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    OPENSSL_cleanse(key.data(), key.size());
    return ErrnoStatus(errno, StrCat("read secret key file ", path));
  }
  return SecretCipher(SecretBytes(std::move(key)));
}

absl::StatusOr<std::string> SecretCipher::Seal(std::string_view name,
                                               std::string_view value) const {
  std::string out(kNonceBytes + value.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, kNonceBytes) != 1) return absl::InternalError("RAND_bytes failed");
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  std::string aad = StrCat(kAadPrefix, name);
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(key_.view().data());
  auto* ct = nonce + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, reinterpret_cast<const unsigned char*>(value.data()),
                        static_cast<int>(value.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + value.size()) != 1) {
    return absl::InternalError("AES-256-GCM sealing failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> SecretCipher::Open(std::string_view name,
                                               std::string_view sealed) const {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError(StrCat("the stored value of secret ", name, " is truncated"));
  }
  const size_t n = sealed.size() - kNonceBytes - kTagBytes;
  auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* ct = nonce + kNonceBytes;
  std::string plain(n, '\0');
  std::string aad = StrCat(kAadPrefix, name);
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(key_.view().data());
  unsigned char tag[kTagBytes];
  std::memcpy(tag, ct + n, kTagBytes);
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, ct,
                              static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                                &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return absl::DataLossError(
        StrCat("the stored value of secret ", name,
               " does not open with the key file (another key, or the row was changed): set it "
               "again"));
  }
  return SecretBytes(std::move(plain));
}

std::string Sha256Hex(std::string_view value) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(value.data()), value.size(), md);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace rauha::secrets
