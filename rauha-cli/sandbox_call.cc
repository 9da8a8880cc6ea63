#include "rauha-cli/sandbox_call.h"

#include <sys/socket.h>

#include <memory>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "rauha-cli/fast_path.h"
#include "rauha-cli/signals.h"
#include "rauha-common/api_metadata.h"
#include "rauha/v1/sandbox.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace sv1 = rauha::sandbox::v1;

constexpr char kService[] = "rauha.sandbox.v1.SandboxService";
constexpr char kMethod[] = "RunSandbox";
// rauhad's largest RunSandbox answer over ttrpc (kMaxRunSandboxResponse in
// rauhad/server/shim_endpoint.h: the wire contract between the two).
constexpr uint32_t kMaxResponse = 64u << 20;

}  // namespace

std::optional<SandboxCall> RunSandboxOverTtrpc(const ClientOptions& options,
                                               const sv1::RunSandboxRequest& req) {
  if (req.ByteSizeLong() > ttrpc::kMaxPayload - 4096) return std::nullopt;  // gRPC answers it
  std::optional<UniqueFd> fd = ConnectFastPath(options);
  if (!fd) return std::nullopt;

  ttrpc::InitialMetadata initial;
  absl::StatusOr<std::string> answer;
  SandboxCall call;
  {
    // ttrpc has no cancel message: closing the connection is the cancel (rauhad's handler sees
    // it as a gRPC handler sees a cancelled call), and it ends the wait here.
    CancelOnSignal cancel([sock = fd->get()] { ::shutdown(sock, SHUT_RDWR); });
    answer = ttrpc::CallOnConnection(fd->get(), kService, kMethod, req.SerializeAsString(),
                                     kMaxResponse, &initial);
    call.cancelled_by_signal = cancel.signal();
  }
  if (!answer.ok() && NotServedBy(answer.status(), kService, kMethod)) return std::nullopt;
  for (const auto& [key, value] : initial) {
    if (key == kTaskIdMetadataKey) call.task_id = value;
  }
  if (!answer.ok() && call.cancelled_by_signal != 0) {
    call.status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    return call;
  }
  if (!answer.ok()) {
    absl::Status status = answer.status();
    if (status.code() == absl::StatusCode::kUnavailable) {
      status = absl::UnavailableError("rauhad closed the connection before its answer");
    }
    call.status = ToGrpcStatus(status);
    return call;
  }
  if (!call.result.ParseFromString(*answer)) {
    call.status = grpc::Status(grpc::StatusCode::INTERNAL,
                               "cannot decode rauhad's answer (rauha.sandbox.v1.SandboxResult)");
    call.result.Clear();
  }
  return call;
}

absl::StatusOr<SandboxCall> RunSandboxOverGrpc(const ClientOptions& options,
                                               const sv1::RunSandboxRequest& req) {
  auto channel = Connect(options);
  if (!channel.ok()) return channel.status();
  auto stub = sv1::SandboxService::NewStub(*channel);
  grpc::ClientContext ctx;
  SandboxCall call;
  {
    CancelOnSignal cancel(&ctx);
    call.status = stub->RunSandbox(&ctx, req, &call.result);
    call.cancelled_by_signal = cancel.signal();
  }
  // Sent once the task was recorded: a client cut off later is told which task to collect.
  const auto& metadata = ctx.GetServerInitialMetadata();
  if (auto it = metadata.find(kTaskIdMetadataKey); it != metadata.end()) {
    call.task_id.assign(it->second.data(), it->second.size());
  }
  return call;
}

absl::StatusOr<SandboxCall> RunSandboxCall(const ClientOptions& options,
                                           const sv1::RunSandboxRequest& req) {
  if (auto fast = RunSandboxOverTtrpc(options, req)) return *std::move(fast);
  return RunSandboxOverGrpc(options, req);
}

}  // namespace rauha::cli
