#include "rauhad/server/container_ttrpc.h"

#include <algorithm>
#include <string_view>

#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha/v1/container.pb.h"
#include "rauhad/config.h"
#include "rauhad/server/invalid_utf8.h"

namespace rauha {
namespace {

namespace cpb = rauha::container::v1;

// One message as one or more data frames: output over kRunContainerDataChunk is split.
bool SendMessage(const ttrpc::CallContext& ctx, const cpb::RunContainerResponse& message) {
  const bool is_out = message.has_stdout_data();
  const std::string* data = is_out                      ? &message.stdout_data()
                            : message.has_stderr_data() ? &message.stderr_data()
                                                        : nullptr;
  if (data == nullptr || data->size() <= kRunContainerDataChunk) {
    return ctx.send_data(message.SerializeAsString());
  }
  for (size_t at = 0; at < data->size(); at += kRunContainerDataChunk) {
    cpb::RunContainerResponse part;
    std::string piece = data->substr(at, std::min(kRunContainerDataChunk, data->size() - at));
    if (is_out) {
      part.set_stdout_data(std::move(piece));
    } else {
      part.set_stderr_data(std::move(piece));
    }
    if (!ctx.send_data(part.SerializeAsString())) return false;
  }
  return true;
}

// The request decoded here rather than by ttrpc's RegisterMethod, so that its limits and
// errors are gRPC's (the interceptors of the gRPC server are not on this path).
template <typename Request>
absl::Status Decode(const std::string& payload, Request* req) {
  if (payload.size() > static_cast<size_t>(kMaxRequestBytes)) {
    return absl::ResourceExhaustedError(StrCat("Received message larger than max (", payload.size(),
                                               " vs. ", kMaxRequestBytes, ")"));
  }
  (void)TakeInvalidUtf8Field();  // a stale name from this thread's earlier parse
  if (!req->ParseFromString(payload)) {
    std::string path = RequestFieldPath(req->GetDescriptor(), TakeInvalidUtf8Field());
    if (!path.empty()) return absl::InvalidArgumentError(InvalidUtf8Message(path));
    return absl::InvalidArgumentError(StrCat("cannot decode ", req->GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RunContainerOverTtrpc(ContainerServiceImpl* containers,
                                                  const ttrpc::CallContext& ctx,
                                                  const std::string& payload) {
  cpb::RunContainerRequest req;
  if (absl::Status decoded = Decode(payload, &req); !decoded.ok()) return decoded;
  if (!ctx.send_data) return absl::InternalError("this ttrpc server cannot send a stream");
  SpanTrace trace("rauhad", "ttrpc RunContainer");
  CallControl call;
  call.cancelled = [closed = ctx.connection_closed] { return closed && closed->load(); };
  if (ctx.deadline != absl::InfiniteFuture()) call.deadline = absl::ToChronoTime(ctx.deadline);
  absl::Status status = containers->RunContainer(
      call, req, [&ctx](const cpb::RunContainerResponse& m) { return SendMessage(ctx, m); });
  if (!status.ok()) return status;
  return std::string();
}

absl::StatusOr<std::string> KillContainerOverTtrpc(ContainerServiceImpl* containers,
                                                   const ttrpc::CallContext&,
                                                   const std::string& payload) {
  cpb::KillContainerRequest req;
  if (absl::Status decoded = Decode(payload, &req); !decoded.ok()) return decoded;
  cpb::KillContainerResponse resp;
  grpc::Status status = containers->KillContainer(nullptr, &req, &resp);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return resp.SerializeAsString();
}

}  // namespace rauha
