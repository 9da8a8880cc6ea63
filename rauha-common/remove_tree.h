// rm -rf without following symlinks: every directory is opened relative to its parent's fd
// with O_NOFOLLOW, so a tree holding hostile symlinks (an unpacked image layer) cannot make
// the removal reach outside it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace rauha {

// Removes `name` below the directory `dir_fd` and everything beneath it; OK when it is
// already gone. Errors name the path and errno.
absl::Status RemoveTreeAt(int dir_fd, const std::string& name);
// The same for an absolute path (its parent is resolved normally; `path` itself is never
// followed if it is a symlink: the link is removed).
absl::Status RemoveTree(const std::string& path);

}  // namespace rauha
