#include "rauhad/egress/zone_ca_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauhad/secrets/secret_cipher.h"

namespace rauha::egress {
namespace {

// Zone ids are UUIDs; anything else never becomes a file name here.
bool IsFileSafeId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id) {
    bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == '-';
    if (!ok) return false;
  }
  return true;
}

std::string SealName(const std::string& zone_id) { return StrCat("zone-ca:", zone_id); }

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, StrCat("read ", path));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 64 * 1024) return absl::DataLossError(StrCat(path, " is too large"));
  }
}

// `bytes` to `path` (0600) by rename, synced: a crash leaves the old file or the new one.
absl::Status WritePrivateFile(const std::string& path, std::string_view bytes) {
  std::string tmp = StrCat(path, ".tmp");
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, StrCat("create ", tmp));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, StrCat("write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("install ", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ZoneCaStore::CertPath(const std::string& zone_id) const {
  return StrCat(dir_, "/", zone_id, ".pem");
}

std::string ZoneCaStore::SealedKeyPath(const std::string& zone_id) const {
  return StrCat(dir_, "/", zone_id, ".key.sealed");
}

absl::StatusOr<std::unique_ptr<ZoneCa>> ZoneCaStore::LoadOrCreate(const std::string& zone_id,
                                                                  const std::string& zone_name,
                                                                  std::string* replaced_why) {
  if (!IsFileSafeId(zone_id)) {
    return absl::InvalidArgumentError(StrCat("zone id \"", zone_id, "\" is not a zone id"));
  }
  auto loaded = Load(zone_id);
  if (loaded.ok()) return loaded;
  if (!absl::IsNotFound(loaded.status()) && replaced_why) {
    *replaced_why = ToStd(loaded.status().message());
  }
  RAUHA_ASSIGN_OR_RETURN(std::unique_ptr<ZoneCa> ca, ZoneCa::Create(zone_name));
  RAUHA_RETURN_IF_ERROR(Store(zone_id, *ca));
  return ca;
}

absl::StatusOr<std::unique_ptr<ZoneCa>> ZoneCaStore::Load(const std::string& zone_id) {
  struct stat st {};
  if (::stat(SealedKeyPath(zone_id).c_str(), &st) != 0 && errno == ENOENT) {
    return absl::NotFoundError("no stored CA");
  }
  RAUHA_ASSIGN_OR_RETURN(std::string sealed, ReadSmallFile(SealedKeyPath(zone_id)));
  RAUHA_ASSIGN_OR_RETURN(std::string cert_pem, ReadSmallFile(CertPath(zone_id)));
  RAUHA_ASSIGN_OR_RETURN(auto cipher, secrets::SecretCipher::Load(key_path_, /*create=*/false));
  auto key_pem = cipher.Open(SealName(zone_id), sealed);
  if (!key_pem.ok()) {
    return absl::DataLossError(StrCat("the stored CA key ", SealedKeyPath(zone_id),
                                      " does not open with ", key_path_,
                                      " (another key, or the file was changed)"));
  }
  return ZoneCa::FromPem(key_pem->view(), cert_pem);
}

absl::Status ZoneCaStore::Store(const std::string& zone_id, const ZoneCa& ca) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("mkdir ", dir_));
  }
  RAUHA_ASSIGN_OR_RETURN(auto cipher, secrets::SecretCipher::Load(key_path_, /*create=*/true));
  RAUHA_ASSIGN_OR_RETURN(secrets::SecretBytes key_pem, ca.KeyPem());
  RAUHA_ASSIGN_OR_RETURN(std::string sealed, cipher.Seal(SealName(zone_id), key_pem.view()));
  // The certificate first: a sealed key is only ever next to its certificate.
  RAUHA_RETURN_IF_ERROR(WritePrivateFile(CertPath(zone_id), ca.cert_pem()));
  return WritePrivateFile(SealedKeyPath(zone_id), sealed);
}

std::vector<std::string> ZoneCaStore::ListZoneIds() const {
  std::set<std::string> ids;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir_.c_str()), ::closedir);
  if (!d) return {};
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    for (std::string_view suffix : {".key.sealed", ".pem", ".key.sealed.tmp", ".pem.tmp"}) {
      if (name.size() > suffix.size() && name.ends_with(suffix)) {
        std::string id = name.substr(0, name.size() - suffix.size());
        if (IsFileSafeId(id)) ids.insert(id);
        break;
      }
    }
  }
  return {ids.begin(), ids.end()};
}

void ZoneCaStore::Remove(const std::string& zone_id) {
  if (!IsFileSafeId(zone_id)) return;
  for (const std::string& path : {SealedKeyPath(zone_id), CertPath(zone_id)}) {
    ::unlink(path.c_str());
    ::unlink(StrCat(path, ".tmp").c_str());
  }
}

}  // namespace rauha::egress
