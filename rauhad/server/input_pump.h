// The client's side of a bidirectional stream (exec, attach, RunSandboxStream), read on a
// thread of its own: gRPC allows one reader and one writer at a time, and the handler's thread
// writes the output.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "grpcpp/server_context.h"

namespace rauha {

// Tag for InputPump's constructor that hands over every message as it is.
struct EachMessage {};

template <typename Request>
class InputPump {
 public:
  // Exec and attach: stdin and resizes to `on_stdin(data, eof)` / `on_resize(rows, cols)`;
  // the client closing its side is the end of input (on_stdin("", true)).
  template <typename Stream, typename OnStdin, typename OnResize>
  InputPump(Stream* stream, OnStdin on_stdin, OnResize on_resize)
      : thread_([this, stream, on_stdin, on_resize] {
          Request req;
          while (stream->Read(&req)) {
            if (req.has_resize()) on_resize(req.resize().rows(), req.resize().cols());
            if (req.message_case() == Request::kStdinData) on_stdin(req.stdin_data(), false);
          }
          on_stdin("", true);  // the client closed its side: end of input
          done_ = true;
        }) {}
  // Every message to `on_message`, then `on_closed` once the client closed its side (or the
  // call ended).
  template <typename Stream>
  InputPump(Stream* stream, EachMessage, std::function<void(const Request&)> on_message,
            std::function<void()> on_closed)
      : thread_(
            [this, stream, on_message = std::move(on_message), on_closed = std::move(on_closed)] {
              Request req;
              while (stream->Read(&req)) on_message(req);
              on_closed();
              done_ = true;
            }) {}
  ~InputPump() { thread_.join(); }
  bool done() const { return done_; }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Waits a moment for the client's half-close once the process is over, then cancels the
// call so the reading thread returns.
template <typename Pump>
void EndInput(grpc::ServerContext* ctx, const Pump& pump,
              std::chrono::milliseconds wait = std::chrono::seconds(2)) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (!pump.done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!pump.done()) ctx->TryCancel();
}

}  // namespace rauha
