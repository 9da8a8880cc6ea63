#include "rauhad/server/status.h"

#include "rauha-common/strcat.h"

namespace rauha {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), ToStd(status.message()));
}

}  // namespace rauha
