#include "containerd-shim-rauha-v2/ttrpc/socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "rauha-common/errors.h"
#include "rauha-common/private_unix_listener.h"

namespace rauha::ttrpc {
namespace {

absl::StatusOr<sockaddr_un> MakeAddress(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", std::string(path),
                                                   "\" is empty or over ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

std::string_view StripUnixScheme(std::string_view address) {
  if (address.starts_with("unix://")) address.remove_prefix(7);
  return address;
}

absl::StatusOr<UniqueFd> ListenUnix(std::string_view address) {
  std::string path(StripUnixScheme(address));
  RAUHA_RETURN_IF_ERROR(MakeAddress(path).status());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink " + path);
  RAUHA_RETURN_IF_ERROR(BindPrivateAndListen(fd.get(), path));
  return fd;
}

absl::StatusOr<UniqueFd> ConnectUnix(std::string_view address) {
  std::string path(StripUnixScheme(address));
  RAUHA_ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "connect " + path);
  }
  return fd;
}

absl::Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "ttrpc send");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace rauha::ttrpc
