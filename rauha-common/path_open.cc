#include "rauha-common/path_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

absl::Status SymlinkError(std::string_view path) {
  return absl::InvalidArgumentError(
      StrCat(path, " is or passes through a symlink; give the real path (realpath ", path, ")"));
}

// The pre-5.6 way: one openat per component, each refusing to follow a symlink.
absl::StatusOr<UniqueFd> WalkNoSymlinks(std::string_view path) {
  UniqueFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoStatus(errno, "open /");
  size_t pos = 1;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string component(path.substr(pos, end - pos));
    UniqueFd next(::openat(dir.get(), component.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return ErrnoStatus(errno, path);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return ErrnoStatus(errno, path);
    if (S_ISLNK(st.st_mode)) return SymlinkError(path);
    dir = std::move(next);
    pos = end + 1;
  }
  return dir;
}

}  // namespace

absl::StatusOr<FileIdentity> IdentityOf(int fd, std::string_view what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, StrCat("fstat ", what));
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool IsNormalAbsolutePath(std::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(pos, end - pos);
    if (component.empty() || component == "." || component == "..") return false;
    pos = end + 1;
  }
  return true;
}

absl::StatusOr<UniqueFd> OpenNoSymlinks(std::string_view path) {
  if (!IsNormalAbsolutePath(path)) {
    return absl::InvalidArgumentError(
        StrCat(path, " is not a normalised absolute path (no '.', '..' or empty components)"));
  }
  std::string p(path);
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, p.c_str(), &how, sizeof(how));
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  if (errno == ELOOP) return SymlinkError(path);
  if (errno != ENOSYS) return ErrnoStatus(errno, path);
  return WalkNoSymlinks(path);
}

absl::StatusOr<UniqueFd> OpenPinned(std::string_view path, const FileIdentity& expected) {
  RAUHA_ASSIGN_OR_RETURN(UniqueFd fd, OpenNoSymlinks(path));
  RAUHA_ASSIGN_OR_RETURN(FileIdentity got, IdentityOf(fd.get(), path));
  if (got != expected) {
    return absl::FailedPreconditionError(
        StrCat(path, " was replaced after rauhad checked it (device/inode ", got.dev, "/", got.ino,
               ", expected ", expected.dev, "/", expected.ino, "); run the task again"));
  }
  return fd;
}

}  // namespace rauha
