#include "rauhad/server/task_input.h"

#include <chrono>

#include "rauhad/shim_client.h"

namespace rauha {
namespace {

// The shim holds at most 1 MiB of a task's unread stdin: pieces well below that.
constexpr size_t kPieceBytes = 64 * 1024;
// A piece the shim refused because the task has not read what it holds is offered again
// after this long.
constexpr auto kStdinRetry = std::chrono::milliseconds(10);

}  // namespace

TaskInput::TaskInput() : worker_([this] { Work(); }) {}

TaskInput::~TaskInput() {
  Ended();
  worker_.join();
}

void TaskInput::Started(const StartedTask& task) {
  std::lock_guard lock(mu_);
  task_ = task;
  cv_.notify_all();
}

void TaskInput::Ended() {
  std::lock_guard lock(mu_);
  ended_ = true;
  cv_.notify_all();
}

void TaskInput::Stdin(std::string data) {
  std::unique_lock lock(mu_);
  while (!data.empty()) {
    cv_.wait(lock, [&] { return ended_ || queued_ < kMaxQueuedStdin; });
    if (ended_ || eof_queued_) return;
    size_t n = std::min(data.size(), kPieceBytes);
    queue_.push_back({data.substr(0, n), false});
    queued_ += n;
    data.erase(0, n);
    cv_.notify_all();
  }
}

void TaskInput::CloseStdin() {
  std::lock_guard lock(mu_);
  if (ended_ || eof_queued_) return;
  eof_queued_ = true;
  queue_.push_back({"", true});
  cv_.notify_all();
}

void TaskInput::Resize(uint32_t rows, uint32_t cols) {
  std::optional<StartedTask> task;
  {
    std::lock_guard lock(mu_);
    if (ended_ || !task_) return;
    task = task_;
  }
  (void)ShimClient(task->shim_socket).Resize(task->task_id, rows, cols);
}

void TaskInput::Signal(int signo) {
  std::optional<StartedTask> task;
  {
    std::lock_guard lock(mu_);
    if (ended_ || !task_) return;
    task = task_;
  }
  (void)ShimClient(task->shim_socket).Kill(task->task_id, signo);
}

void TaskInput::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return ended_ || (task_ && !queue_.empty()); });
    if (ended_) return;
    Piece piece = queue_.front();
    StartedTask task = *task_;
    lock.unlock();
    absl::Status st = ShimClient(task.shim_socket).Stdin(task.task_id, piece.data, piece.eof);
    lock.lock();
    if (absl::IsResourceExhausted(st)) {
      // The task has not read what the shim holds yet: offered again (not reordered).
      cv_.wait_for(lock, kStdinRetry, [&] { return ended_; });
      continue;
    }
    // Taken, or refused for good (the task closed its stdin or ended): either way done with.
    queue_.pop_front();
    queued_ -= piece.data.size();
    cv_.notify_all();
  }
}

}  // namespace rauha
