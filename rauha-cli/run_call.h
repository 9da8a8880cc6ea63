// `rauha run` in the foreground: one RunContainer call (rauhad creates, starts and follows
// the container: its id, its output as it comes, its exit code), over either of rauhad's two
// sockets, as `rauha sandbox` does (sandbox_call.h):
//
// - the fast path: rauhad's ttrpc endpoint (<socket>.ttrpc), the stream's messages as data
//   frames (rauhad/server/container_ttrpc.h); no gRPC client starts in the process;
// - gRPC, as every other command, where the fast path is not there (fast_path.h: an older
//   rauhad, --host, a socket rauhad does not serve this user on, RAUHA_NO_FAST_PATH=1).
//
// Both hand the same messages in the same order to a RunStream, which prints them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "rauha-cli/client.h"
#include "rauha/v1/container.pb.h"

namespace rauha::cli {

// What the caller does with the stream: `on_id` once the container is named (the signal
// proxy starts then), `on_output` for each piece of its output as it comes.
struct RunSink {
  std::function<void(const std::string& id)> on_id;
  std::function<void(bool is_stderr, const std::string& data)> on_output;
};

// The messages of one RunContainer stream, checked and handed to a RunSink. A stream names
// the container first, then carries output, and ends with the exit code; anything else is
// a broken stream (Internal, saying what came): the caller ends the call and prints that.
class RunStream {
 public:
  explicit RunStream(RunSink sink) : sink_(std::move(sink)) {}

  absl::Status Take(const rauha::container::v1::RunContainerResponse& message);
  // One data frame of the ttrpc stream: a serialized RunContainerResponse.
  absl::Status TakeFrame(std::string_view payload);

  const std::string& container_id() const { return id_; }
  const std::optional<int>& exit_code() const { return exit_code_; }

 private:
  RunSink sink_;
  std::string id_;
  std::optional<int> exit_code_;
};

struct RunCallEnd {
  grpc::Status status;          // the call's outcome, with gRPC's codes (ttrpc uses the same)
  int cancelled_by_signal = 0;  // SIGINT / SIGTERM that cancelled the call (signals.h)
};

// The call over rauhad's ttrpc endpoint, its messages into `stream`; nullopt when that path is
// not available and nothing was sent or ran (ConnectFastPath refused, a request too large for
// a ttrpc frame, an endpoint without RunContainer). The caller then makes the call over gRPC.
std::optional<RunCallEnd> RunContainerOverTtrpc(
    const ClientOptions& options, const rauha::container::v1::RunContainerRequest& req,
    RunStream& stream);

// KillContainer over the same endpoint (`rauha run`'s signal proxy on the fast path): the
// call's outcome, or nullopt when the endpoint is not there or does not serve it (the caller
// sends the signal over gRPC). Gives up after 10 s, as the gRPC call does.
std::optional<grpc::Status> KillContainerOverTtrpc(const ClientOptions& options,
                                                   const std::string& container_id, int signo);

}  // namespace rauha::cli
