// SandboxService.RunSandboxStream: RunSandbox with the task live (its output as it comes, its
// stdin, its terminal, signals), then the same SandboxResult.
#include <csignal>
#include <optional>
#include <set>
#include <string>

#include "rauha-common/strcat.h"
#include "rauhad/server/admit.h"
#include "rauhad/server/input_pump.h"
#include "rauhad/server/sandbox_service.h"
#include "rauhad/server/status.h"
#include "rauhad/server/task_input.h"

namespace rauha {
namespace {

namespace spb = rauha::sandbox::v1;

// What a terminal's size can say (struct winsize holds unsigned shorts).
constexpr uint32_t kMaxTerminalSide = 65535;

absl::Status CheckStart(const spb::SandboxStreamStart& start) {
  if ((start.stdin() || start.tty()) && !start.request().stdin_data().empty()) {
    return absl::InvalidArgumentError(
        "request.stdin_data is set with stdin or tty: give the input as stdin_data messages "
        "instead");
  }
  if (start.size().rows() > kMaxTerminalSide || start.size().cols() > kMaxTerminalSide) {
    return absl::InvalidArgumentError(StrCat("terminal size ", start.size().rows(), "x",
                                             start.size().cols(), " is over ", kMaxTerminalSide,
                                             " rows or columns"));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status SandboxServiceImpl::RunSandboxStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<spb::RunSandboxStreamResponse, spb::RunSandboxStreamRequest>* stream) {
  spb::RunSandboxStreamRequest first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.has_start()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message of RunSandboxStream must be start");
  }
  const spb::SandboxStreamStart& start = first.start();
  if (auto st = CheckStart(start); !st.ok()) return ToGrpc(st);
  auto slot = Admit(task_calls_, ctx);
  if (!slot.ok()) return ToGrpc(slot.status());

  TaskInput input;
  // The client's messages after start are read only once the task runs: a call refused before
  // that ends with its error at once, whether or not the client closed its side.
  std::optional<InputPump<spb::RunSandboxStreamRequest>> pump;
  auto on_message = [&](const spb::RunSandboxStreamRequest& req) {
    switch (req.message_case()) {
      case spb::RunSandboxStreamRequest::kStdinData:
        input.Stdin(req.stdin_data());
        break;
      case spb::RunSandboxStreamRequest::kStdinClose:
        input.CloseStdin();
        break;
      case spb::RunSandboxStreamRequest::kResize:
        if (req.resize().rows() <= kMaxTerminalSide && req.resize().cols() <= kMaxTerminalSide) {
          input.Resize(req.resize().rows(), req.resize().cols());
        }
        break;
      case spb::RunSandboxStreamRequest::kSignal:
        if (req.signal() > 0 && req.signal() < NSIG) input.Signal(req.signal());
        break;
      default:
        break;  // a second start: nothing to do
    }
  };
  // Every write happens on this thread (the task's callbacks run on it): no lock needed.
  auto write = [stream](const spb::RunSandboxStreamResponse& msg) { (void)stream->Write(msg); };
  // The live events sent, to send the rest of the result's once before it.
  std::multiset<std::string> sent_events;
  TaskStream hooks;
  hooks.tty = start.tty();
  hooks.stdin_pipe = start.stdin();
  hooks.rows = start.size().rows();
  hooks.cols = start.size().cols();
  hooks.on_started = [&](const StartedTask& t) {
    spb::RunSandboxStreamResponse msg;
    auto* started = msg.mutable_started();
    started->set_task_id(t.task_id);
    started->set_zone_id(t.zone_id);
    started->set_zone_name(t.zone_name);
    started->set_pid(static_cast<uint32_t>(t.pid));
    write(msg);
    input.Started(t);
    // The client closing its sending side is the end of the task's input.
    pump.emplace(stream, EachMessage{}, on_message, [&input] { input.CloseStdin(); });
  };
  hooks.on_output = [&](bool is_stderr, std::string_view data) {
    spb::RunSandboxStreamResponse msg;
    if (is_stderr) {
      msg.set_stderr_data(std::string(data));
    } else {
      msg.set_stdout_data(std::string(data));
    }
    write(msg);
  };
  hooks.on_event = [&](const spb::EnforcementEventSummary& e) {
    spb::RunSandboxStreamResponse msg;
    *msg.mutable_enforcement_event() = e;
    sent_events.insert(e.SerializeAsString());
    write(msg);
  };

  auto result = runner_->Run(
      start.request(), [ctx] { return ctx->IsCancelled(); }, nullptr, &hooks);
  input.Ended();
  if (result.ok()) {
    for (const auto& e : result->enforcement_events()) {
      auto it = sent_events.find(e.SerializeAsString());
      if (it != sent_events.end()) {
        sent_events.erase(it);
        continue;
      }
      spb::RunSandboxStreamResponse msg;
      *msg.mutable_enforcement_event() = e;
      write(msg);
    }
    spb::RunSandboxStreamResponse msg;
    *msg.mutable_result() = *result;
    write(msg);
  }
  if (pump) {
    EndInput(ctx, *pump);
    pump.reset();
  }
  slot = CallGate::Slot();
  if (!result.ok()) return ToGrpc(result.status());
  return grpc::Status::OK;
}

}  // namespace rauha
