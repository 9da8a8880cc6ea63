// Unix stream sockets for ttrpc: listening (the shim's socket) and connecting (containerd's
// events socket). Paths may carry containerd's "unix://" prefix.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::ttrpc {

// "unix:///run/x.sock" -> "/run/x.sock"; a path without the scheme is returned as it is.
std::string_view StripUnixScheme(std::string_view address);

// Binds and listens on `path` (created mode 0600, after removing a stale socket file there).
absl::StatusOr<UniqueFd> ListenUnix(std::string_view path);
absl::StatusOr<UniqueFd> ConnectUnix(std::string_view path);

// Writes all of `bytes` (retrying short writes and EINTR).
absl::Status WriteAll(int fd, std::string_view bytes);

}  // namespace rauha::ttrpc
