#include "rauha-common/private_unix_listener.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {

absl::Status BindPrivateAndListen(int fd, const std::string& path, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(StrCat("socket path \"", path, "\" is empty or over ",
                                             sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::fchmod(fd, 0600) != 0) return ErrnoStatus(errno, StrCat("chmod 600 socket for ", path));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, StrCat("bind ", path));
  }
  if (::listen(fd, backlog) != 0) return ErrnoStatus(errno, StrCat("listen ", path));
  return absl::OkStatus();
}

}  // namespace rauha
