#include "rauhad/private_socket.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <utility>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// What a killed rauhad may leave: the directory (its user's, no one else's access) with the
// bound socket in it. Anything else at that name is not ours to remove.
absl::Status RemoveStale(const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("stat ", dir));
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(StrCat(
        dir, " exists and is not rauhad's bind directory; remove it or pass another --socket"));
  }
  const std::string sock = dir + "/s";
  if (::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(sock.c_str());
  if (::rmdir(dir.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("removing the stale bind directory ", dir));
  }
  return absl::OkStatus();
}

}  // namespace

std::string PrivateSocketDir(const std::string& final_path) {
  std::filesystem::path p(final_path);
  return (p.parent_path() / StrCat(".", p.filename().string(), ".bind")).string();
}

absl::StatusOr<PrivateSocket> PrivateSocket::Prepare(const std::string& final_path) {
  const std::string dir = PrivateSocketDir(final_path);
  if (dir.size() + 2 >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(
        StrCat("socket path ", final_path, " is too long: at most ",
               sizeof(sockaddr_un{}.sun_path) - 1 - (dir.size() + 2 - final_path.size()),
               " bytes (rauhad binds it as ", dir, "/s first)"));
  }
  RAUHA_RETURN_IF_ERROR(RemoveStale(dir));
  // mkdir fails on an existing name, so the directory is the one made here; 0700 whatever
  // the umask.
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, StrCat("mkdir ", dir));
  if (::chmod(dir.c_str(), 0700) != 0) {
    int err = errno;
    ::rmdir(dir.c_str());
    return ErrnoStatus(err, StrCat("chmod ", dir));
  }
  return PrivateSocket(final_path, dir);
}

PrivateSocket::PrivateSocket(std::string final_path, std::string dir)
    : final_path_(std::move(final_path)), dir_(std::move(dir)), bind_path_(dir_ + "/s") {}

PrivateSocket::PrivateSocket(PrivateSocket&& other) noexcept
    : final_path_(std::move(other.final_path_)),
      dir_(std::exchange(other.dir_, "")),
      bind_path_(std::move(other.bind_path_)) {}

PrivateSocket::~PrivateSocket() { Remove(); }

void PrivateSocket::Remove() {
  if (dir_.empty()) return;
  ::unlink(bind_path_.c_str());
  ::rmdir(dir_.c_str());
  dir_.clear();
}

absl::Status PrivateSocket::Publish() {
  if (::chmod(bind_path_.c_str(), 0600) != 0) {
    return ErrnoStatus(errno, StrCat("chmod 600 ", bind_path_));
  }
  if (::rename(bind_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", bind_path_, " to ", final_path_));
  }
  Remove();
  return absl::OkStatus();
}

}  // namespace rauha
