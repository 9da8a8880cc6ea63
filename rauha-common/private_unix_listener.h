// A listening unix socket that is mode 0600 from the moment its file exists: rauha-shim's
// socket and the ttrpc endpoints' (rauhad's, containerd-shim-rauha-v2's).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace rauha {

// Binds `fd` (an AF_UNIX stream socket) at `path` and listens. bind(2) gives the socket file
// the socket inode's mode less the umask, so the inode is made 0600 first: a chmod after bind
// would leave a window in which another user could connect, and changing the umask around
// bind is process-wide (another thread's files would get it). InvalidArgument when `path`
// does not fit a unix socket address.
absl::Status BindPrivateAndListen(int fd, const std::string& path, int backlog = 64);

}  // namespace rauha
