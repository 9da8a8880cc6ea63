#include "rauha-cli/run_call.h"

#include <sys/socket.h>
#include <sys/time.h>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "rauha-cli/fast_path.h"
#include "rauha-cli/signals.h"
#include "rauha-common/strcat.h"

namespace rauha::cli {
namespace {

namespace cv1 = rauha::container::v1;

constexpr char kService[] = "rauha.container.v1.ContainerService";
constexpr char kMethod[] = "RunContainer";

std::string_view KindOf(const cv1::RunContainerResponse& m) {
  switch (m.message_case()) {
    case cv1::RunContainerResponse::kContainerId:
      return "the container's id";
    case cv1::RunContainerResponse::kStdoutData:
    case cv1::RunContainerResponse::kStderrData:
      return "output";
    default:
      return "the exit code";
  }
}

}  // namespace

absl::Status RunStream::Take(const cv1::RunContainerResponse& m) {
  // A kind this CLI does not know (a newer rauhad's) reads as an empty message: skipped.
  if (m.message_case() == cv1::RunContainerResponse::MESSAGE_NOT_SET) return absl::OkStatus();
  std::string wrong;
  if (exit_code_) {
    wrong = StrCat(KindOf(m), " after the exit code");
  } else if (id_.empty() && !m.has_container_id()) {
    wrong = StrCat(KindOf(m), " before the container's id");
  } else if (!id_.empty() && m.has_container_id()) {
    wrong = "the container's id again";
  }
  if (!wrong.empty()) {
    return absl::InternalError(StrCat("rauhad's RunContainer stream is broken: ", wrong));
  }
  switch (m.message_case()) {
    case cv1::RunContainerResponse::kContainerId:
      if (m.container_id().empty()) {
        return absl::InternalError("rauhad's RunContainer stream is broken: an empty container id");
      }
      id_ = m.container_id();
      if (sink_.on_id) sink_.on_id(id_);
      break;
    case cv1::RunContainerResponse::kStdoutData:
      if (sink_.on_output) sink_.on_output(false, m.stdout_data());
      break;
    case cv1::RunContainerResponse::kStderrData:
      if (sink_.on_output) sink_.on_output(true, m.stderr_data());
      break;
    case cv1::RunContainerResponse::kExitCode:
      exit_code_ = m.exit_code();
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status RunStream::TakeFrame(std::string_view payload) {
  cv1::RunContainerResponse m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InternalError(
        "cannot decode rauhad's answer (rauha.container.v1.RunContainerResponse)");
  }
  return Take(m);
}

std::optional<RunCallEnd> RunContainerOverTtrpc(const ClientOptions& options,
                                                const cv1::RunContainerRequest& req,
                                                RunStream& stream) {
  if (req.ByteSizeLong() > ttrpc::kMaxPayload - 4096) return std::nullopt;  // gRPC answers it
  std::optional<UniqueFd> fd = ConnectFastPath(options);
  if (!fd) return std::nullopt;
  absl::Status status;
  RunCallEnd end;
  {
    // ttrpc has no cancel message: closing the connection is the cancel (rauhad sees a client
    // gone away, as for a cancelled gRPC call: the container runs on), and it ends the wait.
    CancelOnSignal cancel([sock = fd->get()] { ::shutdown(sock, SHUT_RDWR); });
    status = ttrpc::StreamingCallOnConnection(
        fd->get(), kService, kMethod, req.SerializeAsString(),
        [&stream](std::string_view payload) { return stream.TakeFrame(payload); });
    end.cancelled_by_signal = cancel.signal();
  }
  if (NotServedBy(status, kService, kMethod) && stream.container_id().empty()) return std::nullopt;
  if (!status.ok() && end.cancelled_by_signal != 0) {
    end.status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    return end;
  }
  if (status.code() == absl::StatusCode::kUnavailable) {
    status = absl::UnavailableError("rauhad closed the connection before its answer");
  }
  end.status = ToGrpcStatus(status);
  return end;
}

std::optional<grpc::Status> KillContainerOverTtrpc(const ClientOptions& options,
                                                   const std::string& container_id, int signo) {
  std::optional<UniqueFd> fd = ConnectFastPath(options);
  if (!fd) return std::nullopt;
  // The proxy runs on the signal watcher's thread: a rauhad that does not answer must not hold
  // the signals up for long.
  const timeval limit{.tv_sec = 10, .tv_usec = 0};
  (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  (void)::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  cv1::KillContainerRequest req;
  req.set_container_id(container_id);
  req.set_signal(signo);
  absl::StatusOr<std::string> answer =
      ttrpc::CallOnConnection(fd->get(), kService, "KillContainer", req.SerializeAsString());
  if (!answer.ok() && NotServedBy(answer.status(), kService, "KillContainer")) return std::nullopt;
  return ToGrpcStatus(answer.status());
}

}  // namespace rauha::cli
