#include "containerd-shim-rauha-v2/ttrpc/status.h"

#include <string>

namespace rauha::ttrpc {

::ttrpc::Status ToProto(const absl::Status& status) {
  ::ttrpc::Status out;
  out.set_code(static_cast<int32_t>(status.code()));
  out.set_message(std::string(status.message()));
  return out;
}

absl::Status FromProto(const ::ttrpc::Status& status) {
  int code = status.code();
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), status.message());
}

}  // namespace rauha::ttrpc
