// Directories rauhad keeps its files in (--run-dir, --state-dir, the socket's directory).
// rauhad creates what is missing with the mode it needs and never changes a directory it did
// not create: `--socket /tmp/x.sock` must not make /tmp private.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace rauha {

// mkdir -p `path`: missing parents get 0755, `path` itself (when missing) `mode`, exactly
// (the umask does not apply). Existing directories are left as they are; an existing
// component that is not a directory is FailedPrecondition. `created` (optional) tells whether
// `path` itself was created.
absl::Status MakeOwnedDirectory(const std::string& path, mode_t mode, bool* created = nullptr);

// "" when `path` is a directory only root can write to, else a sentence saying who else can
// (group or other write permission, or another owner), for a start-up warning.
std::string DirectoryExposure(const std::string& path);

}  // namespace rauha
