// absl::Status -> grpc::Status at the server edge: same code, same message.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace rauha {

grpc::Status ToGrpc(const absl::Status& status);

}  // namespace rauha
