// The ttrpc status model: google.rpc.Status in every Response, with gRPC's codes (the same
// numbers as absl::StatusCode). OK carries the payload; anything else only the status.
#pragma once

#include "absl/status/status.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {

::ttrpc::Status ToProto(const absl::Status& status);
// Codes outside gRPC's range become Unknown, keeping the message.
absl::Status FromProto(const ::ttrpc::Status& status);

}  // namespace rauha::ttrpc
