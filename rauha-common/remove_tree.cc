#include "rauha-common/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

absl::Status RemoveContents(int dir_fd, const std::string& shown, int depth) {
  if (depth > 4096) return absl::FailedPreconditionError(StrCat("remove ", shown, ": too deep"));
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, StrCat("open ", shown));
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return ErrnoStatus(errno, StrCat("opendir ", shown));
  }
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    entries.emplace_back(std::move(n), is_dir);
  }
  ::closedir(d);
  for (const auto& [n, is_dir] : entries) {
    if (is_dir) {
      RAUHA_RETURN_IF_ERROR(RemoveTreeAt(dir_fd, n));
    } else if (::unlinkat(dir_fd, n.c_str(), 0) < 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("remove ", shown, "/", n));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoveTreeAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("stat ", name));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) < 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("remove ", name));
    }
    return absl::OkStatus();
  }
  UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) return ErrnoStatus(errno, StrCat("open ", name));
  RAUHA_RETURN_IF_ERROR(RemoveContents(sub.get(), name, 0));
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("rmdir ", name));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  size_t slash = path.rfind('/');
  if (path.empty() || path[0] != '/' || slash == path.size() - 1) {
    return absl::InvalidArgumentError(StrCat("remove tree: \"", path, "\" is not absolute"));
  }
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("open ", parent));
  }
  return Annotate(RemoveTreeAt(pfd.get(), path.substr(slash + 1)), parent);
}

}  // namespace rauha
