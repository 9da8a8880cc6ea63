// A host path that a request names (repo_path for a zone to see, output_dir for the shim to
// write; writable paths, bind mounts and image imports use the same rules). The rules, for every
// zone but a privileged one:
//
//   - the path is absolute, normalised, exists, and no component is a symlink: it is opened
//     with openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) and what was opened is checked,
//     not the string;
//   - it is not a protected directory (the system directories: /proc, /sys, /dev, /etc, /boot,
//     /usr, /bin, /sbin, /lib*, /run, /var/lib, /var/run, ... and rauhad's run and state
//     directories), not inside one, and no ancestor of one or of rauhad's socket. Checked by
//     identity (device, inode) as well, so a bind mount of a protected directory elsewhere is
//     refused too;
//   - it is not one of the broad directories that hold other people's files (/home, /tmp, /mnt,
//     ...), although a directory beneath them is fine;
//   - with --repo-root given, it lies beneath one of the roots.
//
// The result carries the open directory and its identity: the shim re-opens the path the same
// way and mounts only an object with that identity, so swapping a component for a symlink
// after the check gains nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"
#include "rauha-common/path_open.h"

namespace rauha {

struct HostPathRules {
  // --repo-root: when non-empty, a path must be one of these or beneath one.
  std::vector<std::string> roots;
  // rauhad's own socket, run dir and state dir: never exposed, nor any ancestor of them.
  std::vector<std::string> daemon_paths;
  // What a refused caller should do instead (the end of the PermissionDenied message).
  std::string advice =
      "A zone may see a project directory of its own only; name one (it must not hold system "
      "directories or rauhad's files), or use a privileged zone";
};

struct HostPath {
  std::string path;  // absolute, normalised, symlink-free: the directory's real path
  FileIdentity identity;
  UniqueFd fd;  // O_PATH
};

// Checks `path` (named by the request's field `field`, e.g. "repo_path") against `rules` and
// opens it as a directory. Errors: InvalidArgument (not absolute or normalised, a symlink, not
// a directory), NotFound (missing), PermissionDenied (a protected or too broad directory, or
// outside --repo-root); each message names the field and says what to do.
absl::StatusOr<HostPath> OpenExposableDirectory(std::string_view field, std::string_view path,
                                                const HostPathRules& rules);

// Privileged zones are exempt from the rules: the directory only has to exist. Symlinks are
// followed; the result's path is the real path of what was opened.
absl::StatusOr<HostPath> OpenDirectoryForPrivilegedZone(std::string_view field,
                                                        std::string_view path);

// The protected system directories, as the rules above list them (for messages and tests).
const std::vector<std::string_view>& ProtectedSystemDirectories();

}  // namespace rauha
