// Opening a host path so that what is opened is what the path string says: no component may be
// a symlink (or a /proc magic link), so the string is the object's real path in the caller's
// mount namespace. Used by rauhad to check a host path a request names and by the shim to
// mount exactly the object rauhad checked (by identity), whatever happened to the path between.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha {

// What a file is, independent of the name it was reached by.
struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const FileIdentity&) const = default;
};

// Identity of an open fd (fstat), or the errno as a status naming `what`.
absl::StatusOr<FileIdentity> IdentityOf(int fd, std::string_view what);

// Opens absolute `path` O_PATH without following any symlink on the way: openat2 with
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or a component walk with O_NOFOLLOW on kernels
// before 5.6. A symlink anywhere gives ELOOP, reported as InvalidArgument naming the path.
// `path` must be absolute and normalised (no "." or ".." components, no "//").
absl::StatusOr<UniqueFd> OpenNoSymlinks(std::string_view path);

// OpenNoSymlinks, then checks that what was opened is `expected`: FailedPrecondition when the
// path now names another object (it was replaced after whoever pinned it checked it).
absl::StatusOr<UniqueFd> OpenPinned(std::string_view path, const FileIdentity& expected);

// True when `path` is absolute and has no empty, "." or ".." component (a trailing '/' is
// allowed only for "/").
bool IsNormalAbsolutePath(std::string_view path);

}  // namespace rauha
