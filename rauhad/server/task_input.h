// The client's input for a running streaming task (RunSandboxStream): stdin, its end,
// terminal resizes and signals, passed to the task's shim in the order they came. stdin goes
// through a queue a worker thread of its own
// drains (the shim takes it as the task reads it); resizes and signals go at once, past any
// stdin still queued (a ^C must reach a task that does not read).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rauhad/task_runner.h"

namespace rauha {

class TaskInput {
 public:
  // Unsent stdin beyond this blocks Stdin (and so the client's stream, by gRPC flow control).
  static constexpr size_t kMaxQueuedStdin = 1u << 20;

  TaskInput();
  // Stops the worker; what is still queued is dropped (the task is over).
  ~TaskInput();

  // The task runs: call before any input.
  void Started(const StartedTask& task);
  // The task is over: nothing more is passed, and a blocked Stdin returns.
  void Ended();

  void Stdin(std::string data);
  void CloseStdin();
  void Resize(uint32_t rows, uint32_t cols);
  void Signal(int signo);

 private:
  struct Piece {
    std::string data;
    bool eof = false;
  };
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<StartedTask> task_;
  bool ended_ = false;
  std::deque<Piece> queue_;
  size_t queued_ = 0;
  bool eof_queued_ = false;
  std::thread worker_;
};

}  // namespace rauha
