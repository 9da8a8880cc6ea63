// openat2(2) with RESOLVE_IN_ROOT: opens `path` as if `root_fd` were "/", so ".." and
// symlinks (absolute ones included) never lead above it, and procfs magic links are refused
// (mount crossings too unless `cross_mounts`). The kernel does the containment; no string
// checks.
#pragma once

#include <cstdint>

namespace rauha {

// A new fd (O_CLOEXEC added) or -1 with errno set (EXDEV for a crossing, ELOOP for a magic
// link or too many symlinks, ENOSYS before Linux 5.6). `flags` are open(2) flags; O_NOFOLLOW
// applies to the last component as usual.
int OpenInRoot(int root_fd, const char* path, int flags, bool cross_mounts = false);

}  // namespace rauha
