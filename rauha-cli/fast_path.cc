#include "rauha-cli/fast_path.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "rauha-common/errors.h"
#include "rauha-common/shim_endpoint_path.h"
#include "rauha-common/strcat.h"

namespace rauha::cli {
namespace {

bool EndpointServesUs(int fd) {
  ucred server{};
  socklen_t len = sizeof(server);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &server, &len) != 0) return false;
  const uid_t self = ::geteuid();
  return self == 0 || self == server.uid;
}

}  // namespace

bool FastPathDisabled() {
  const char* env = std::getenv("RAUHA_NO_FAST_PATH");
  return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
}

std::optional<UniqueFd> ConnectFastPath(const ClientOptions& options) {
  if (FastPathDisabled() || !ResolveHost(options.host).empty()) return std::nullopt;
  auto fd = ttrpc::ConnectUnix(ShimEndpointPath(ResolveSocketPath(options.socket)));
  if (!fd.ok() || !EndpointServesUs(fd->get())) return std::nullopt;
  return *std::move(fd);
}

bool NotServedBy(const absl::Status& status, std::string_view service, std::string_view method) {
  return status.code() == absl::StatusCode::kUnimplemented &&
         status.message() == StrCat("service ", service, " method ", method, ": not implemented");
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), ToStd(status.message()));
}

}  // namespace rauha::cli
