#include "rauhad/owned_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {

absl::Status MakeOwnedDirectory(const std::string& path, mode_t mode, bool* created) {
  if (created) *created = false;
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(StrCat("directory \"", path, "\" must be an absolute path"));
  }
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    if (path[pos - 1] == '/') continue;  // "//" or a trailing '/'
    std::string component = path.substr(0, pos);
    bool last = pos == path.size() || path.find_first_not_of('/', pos) == std::string::npos;
    mode_t want = last ? mode : 0755;
    if (::mkdir(component.c_str(), want) == 0) {
      // Ours: set the mode the umask took away. Nothing else is ever chmod-ed.
      if (::chmod(component.c_str(), want) != 0) {
        return ErrnoStatus(errno, StrCat("chmod ", component));
      }
      if (last && created) *created = true;
      continue;
    }
    if (errno != EEXIST) return ErrnoStatus(errno, StrCat("mkdir ", component));
    struct stat st;
    if (::stat(component.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", component));
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          StrCat(component, " exists and is not a directory; remove it or choose another path"));
    }
  }
  return absl::OkStatus();
}

std::string DirectoryExposure(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  if (st.st_uid != 0) return StrCat(path, " belongs to uid ", st.st_uid, ", not root");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    return StrCat(path, " is writable by ", (st.st_mode & S_IWOTH) ? "every user" : "its group",
                  " (mode ", mode, ")");
  }
  return "";
}

}  // namespace rauha
