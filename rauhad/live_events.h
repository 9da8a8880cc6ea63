// A task's kernel enforcement events on their way from the thread that reads them (the BPF ring
// buffer's, the nftables drop log's) to the thread that serves the task's stream: Push only
// queues and wakes (it runs under the enforcement hub's lock, so it must never wait for a
// client), the serving thread polls fd() with its shim connection and takes what came.
#pragma once

#include <deque>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/enforcement_event.h"
#include "rauha-common/fd.h"

namespace rauha {

class LiveEventQueue {
 public:
  // At most this many wait; more are left for the result, which holds every event anyway.
  static constexpr size_t kMaxQueued = 4096;

  static absl::StatusOr<LiveEventQueue> Create();

  void Push(const EnforcementEvent& event);
  std::vector<EnforcementEvent> TakeAll();
  // Readable (an eventfd) while events wait.
  int fd() const { return wake_.get(); }

  LiveEventQueue(LiveEventQueue&& other) noexcept : wake_(std::move(other.wake_)) {}

 private:
  explicit LiveEventQueue(UniqueFd wake) : wake_(std::move(wake)) {}

  UniqueFd wake_;
  std::mutex mu_;
  std::deque<EnforcementEvent> queued_;
};

}  // namespace rauha
