#include "rauha-cli/sandbox_stream.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "rauha-cli/signals.h"
#include "rauha-cli/terminal.h"
#include "rauha/v1/sandbox.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace sv1 = rauha::sandbox::v1;
using Stream =
    grpc::ClientReaderWriter<sv1::RunSandboxStreamRequest, sv1::RunSandboxStreamResponse>;

// The sending side, shared by the threads that send (stdin, signals, resizes): the start
// first (what comes before it waits for it), nothing once it is closed.
class Sender {
 public:
  explicit Sender(Stream* stream) : stream_(stream) {}
  bool Start(const sv1::RunSandboxStreamRequest& start) {
    std::lock_guard lock(mu_);
    started_ = stream_->Write(start);
    for (const auto& msg : early_) {
      if (started_) started_ = stream_->Write(msg);
    }
    early_.clear();
    return started_;
  }
  bool Send(const sv1::RunSandboxStreamRequest& msg) {
    std::lock_guard lock(mu_);
    if (!started_ && !closed_) {
      early_.push_back(msg);
      return true;
    }
    return !closed_ && stream_->Write(msg);
  }
  void Close() {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    stream_->WritesDone();
  }

 private:
  std::mutex mu_;
  Stream* stream_;
  bool started_ = false;
  bool closed_ = false;
  std::vector<sv1::RunSandboxStreamRequest> early_;
};

// Copies this stdin to the task until its EOF (then stdin_close; a terminal has none), or
// until destroyed.
class StdinForwarder {
 public:
  StdinForwarder(Sender* sender, bool enabled, bool tty)
      : thread_([this, sender, enabled, tty] {
          char buf[16384];
          while (enabled && !stop_) {
            pollfd p{STDIN_FILENO, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            sv1::RunSandboxStreamRequest msg;
            if (n <= 0) {
              if (!tty) {
                msg.set_stdin_close(true);
                sender->Send(msg);
              }
              return;
            }
            msg.set_stdin_data(std::string(buf, static_cast<size_t>(n)));
            if (!sender->Send(msg)) return;
          }
        }) {}
  ~StdinForwarder() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void SendSize(Sender& sender) {
  uint32_t rows = 0, cols = 0;
  if (!TerminalSize(&rows, &cols)) return;
  sv1::RunSandboxStreamRequest msg;
  msg.mutable_resize()->set_rows(rows);
  msg.mutable_resize()->set_cols(cols);
  sender.Send(msg);
}

// One line on stderr per denial, as it comes (not with a terminal: it is the task's).
void PrintEvent(const sv1::EnforcementEventSummary& e) {
  std::string line = StrCat("rauha: enforcement: ", e.decision(), " ", e.hook());
  if (!e.layer().empty()) line += StrCat(" (", e.layer(), ")");
  if (!e.object().empty()) line += StrCat(" ", e.object());
  if (!e.message().empty()) line += StrCat(": ", e.message());
  WriteAll(STDERR_FILENO, line + "\n");
}

// "rauha: task 1b2c... failed: exit code 3, 1520 ms" on stderr.
void PrintSummary(const sv1::SandboxResult& r) {
  std::string how = r.has_exit_code() ? StrCat("exit code ", r.exit_code())
                    : r.has_signal()  ? StrCat("killed by ", SignalName(r.signal()))
                                      : std::string("no exit code");
  std::string line =
      StrCat("rauha: task ", r.task_id(), " ", r.status(), ": ", how, ", ", r.duration_ms(), " ms");
  if (r.enforcement_events_size() > 0) {
    line += StrCat(", ", r.enforcement_events_size(), " enforcement event",
                   r.enforcement_events_size() == 1 ? "" : "s");
  }
  if (r.stdout_truncated() || r.stderr_truncated()) {
    line += " (the result keeps only the head of the output; the stream had all of it)";
  }
  WriteAll(STDERR_FILENO, line + "\n");
  if (!r.error().empty()) WriteAll(STDERR_FILENO, StrCat("rauha: ", r.error(), "\n"));
}

}  // namespace

int RunSandboxStreaming(const Cli& cli, const sv1::RunSandboxRequest& request,
                        const StreamFlags& flags) {
  auto stub = MakeStub<sv1::SandboxService>(cli);
  if (!stub.ok()) return Fail(stub.status(), kExitRuntimeError);
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = (*stub)->RunSandboxStream(&ctx);
  Sender sender(stream.get());

  sv1::RunSandboxStreamRequest first;
  auto* start = first.mutable_start();
  *start->mutable_request() = request;
  start->set_stdin(flags.stdin && !flags.tty);
  start->set_tty(flags.tty);
  uint32_t rows = 0, cols = 0;
  if (flags.tty && TerminalSize(&rows, &cols)) {
    start->mutable_size()->set_rows(rows);
    start->mutable_size()->set_cols(cols);
  }
  std::optional<sv1::SandboxResult> result;
  std::string task_id;
  int cancelled_by = 0;
  {
    // In place before the task can run: a signal is the task's from its start.
    ForwardSignals signals(
        &ctx,
        [&sender](int signo) {
          sv1::RunSandboxStreamRequest msg;
          msg.set_signal(signo);
          sender.Send(msg);
        },
        [&sender, tty = flags.tty] {
          if (tty) SendSize(sender);
        });
    const bool sent = sender.Start(first);
    std::optional<RawTerminal> raw;
    std::optional<StdinForwarder> input;
    sv1::RunSandboxStreamResponse resp;
    while (sent && !result && stream->Read(&resp)) {
      switch (resp.message_case()) {
        case sv1::RunSandboxStreamResponse::kStarted:
          task_id = resp.started().task_id();
          // The terminal goes raw (and this stdin to the task) once the task runs: an error
          // before that is printed on a terminal as it was.
          raw.emplace(flags.tty);
          input.emplace(&sender, flags.stdin, flags.tty);
          break;
        case sv1::RunSandboxStreamResponse::kStdoutData:
          WriteAll(STDOUT_FILENO, resp.stdout_data());
          break;
        case sv1::RunSandboxStreamResponse::kStderrData:
          WriteAll(STDERR_FILENO, resp.stderr_data());
          break;
        case sv1::RunSandboxStreamResponse::kEnforcementEvent:
          if (!flags.tty) PrintEvent(resp.enforcement_event());
          break;
        case sv1::RunSandboxStreamResponse::kResult:
          result = resp.result();
          break;
        default:
          break;
      }
    }
    input.reset();
    raw.reset();
    cancelled_by = signals.signal();
  }
  sender.Close();
  grpc::Status s = stream->Finish();
  if (result) {
    if (flags.json) {
      PrintJson(SandboxResultToJson(*result));
    } else if (!flags.tty || (result->status() != "succeeded" && result->status() != "failed")) {
      PrintSummary(*result);
    }
    return ExitCodeForResult(*result);
  }
  if (cancelled_by != 0) {
    PrintError(StrCat("cancelled by ", SignalName(cancelled_by)));
    return ExitCodeForSignal(cancelled_by);
  }
  if (s.ok()) s = grpc::Status(grpc::StatusCode::INTERNAL, "the stream ended without a result");
  if (!task_id.empty() && s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return Fail(StrCat("rauhad went away while task ", task_id,
                       " ran; collect its result with `rauha task wait ", task_id, "` (",
                       DescribeRpcError(s), ")"),
                kExitRuntimeError);
  }
  return Fail(DescribeRpcError(s), kExitRuntimeError);
}

}  // namespace rauha::cli
