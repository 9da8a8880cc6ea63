#include "rauhad/call_gate.h"

#include "absl/status/status.h"
#include "rauha-common/strcat.h"

namespace rauha {

CallGate::CallGate(std::string what, uint32_t running_max, uint32_t waiting_max,
                   std::function<void()> on_idle)
    : what_(std::move(what)),
      running_max_(running_max),
      waiting_max_(waiting_max),
      on_idle_(std::move(on_idle)) {}

CallGate::Slot& CallGate::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (gate_) gate_->Release();
    gate_ = other.gate_;
    other.gate_ = nullptr;
  }
  return *this;
}

CallGate::Slot::~Slot() {
  if (gate_) gate_->Release();
}

absl::StatusOr<CallGate::Slot> CallGate::Acquire(const std::function<bool()>& cancelled,
                                                 std::chrono::system_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (running_ < running_max_ && line_.empty()) {
    ++running_;
    return Slot(this);
  }
  if (line_.size() >= waiting_max_) {
    return absl::ResourceExhaustedError(
        waiting_max_ == 0
            ? StrCat("rauhad is busy: ", running_, " ", what_,
                     " are in progress, the most it runs at once; retry when one has finished")
            : StrCat("rauhad is busy: ", running_, " ", what_, " are in progress and ",
                     line_.size(), " wait, the most it queues; retry later"));
  }
  const uint64_t ticket = next_ticket_++;
  line_.push_back(ticket);
  // Polled: a caller that goes away (cancel, deadline) leaves the line within 50 ms.
  while (granted_.erase(ticket) == 0) {
    const bool was_cancelled = cancelled && cancelled();
    if (was_cancelled || std::chrono::system_clock::now() >= deadline) {
      line_.remove(ticket);
      return was_cancelled
                 ? absl::CancelledError(StrCat("the call was cancelled while it waited behind ",
                                               running_, " ", what_))
                 : absl::DeadlineExceededError(StrCat(
                       "the deadline passed while the call waited behind ", running_, " ", what_));
    }
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  return Slot(this);  // running_ already counts this call: Release handed its slot over
}

void CallGate::Release() {
  bool idle = false;
  {
    std::lock_guard lock(mu_);
    // The slot passes straight to the head of the line: running_ never dips while a call
    // waits, so no one is told "0 in progress and 1 waiting" in the moment before the
    // waiter wakes.
    if (!line_.empty()) {
      granted_.insert(line_.front());
      line_.pop_front();
    } else {
      --running_;
      idle = running_ == 0;
    }
  }
  cv_.notify_all();
  if (idle && on_idle_) on_idle_();
}

uint32_t CallGate::running() {
  std::lock_guard lock(mu_);
  return running_;
}

uint32_t CallGate::waiting() {
  std::lock_guard lock(mu_);
  return static_cast<uint32_t>(line_.size());
}

}  // namespace rauha
