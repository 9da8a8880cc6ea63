// RunSandbox's output_dir: a host directory where the task's shim, as root, creates the files
// "stdout" and "stderr" with content the task chose. So it must not be a place where such a
// file means something to the host (/etc/cron.d/stdout would be run by cron) or to rauhad.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "rauhad/config.h"

namespace rauha {

// OK for an absolute path to an existing directory that is not and does not pass through a
// symlink (checked by opening it with openat2 RESOLVE_NO_SYMLINKS), that holds no ".." and
// that is not "/", under a system directory (/etc, /usr, /boot, /proc, /sys, /dev, /run,
// /var/lib, /var/spool, /var/cache, /bin, /sbin, /lib*) or under rauhad's run or state
// directory: InvalidArgument (NotFound when missing) naming output_dir otherwise. Then the
// rules of host_path.h (but --repo-root), by identity: not inside a protected directory even
// through a bind mount, not an ancestor of rauhad's socket or directories, not /tmp, /home,
// ... themselves: PermissionDenied.
absl::Status CheckOutputDir(const std::string& dir, const DaemonConfig& config);

}  // namespace rauha
