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
  auto leave = [&] {
    line_.remove(ticket);
    cv_.notify_all();  // the next in line may be the head now
  };
  // Polled: a caller that goes away (cancel, deadline) leaves the line within 50 ms.
  while (line_.front() != ticket || running_ >= running_max_) {
    if (cancelled && cancelled()) {
      leave();
      return absl::CancelledError(
          StrCat("the call was cancelled while it waited behind ", running_, " ", what_));
    }
    if (std::chrono::system_clock::now() >= deadline) {
      leave();
      return absl::DeadlineExceededError(
          StrCat("the deadline passed while the call waited behind ", running_, " ", what_));
    }
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  line_.pop_front();
  ++running_;
  cv_.notify_all();
  return Slot(this);
}

void CallGate::Release() {
  bool idle;
  {
    std::lock_guard lock(mu_);
    --running_;
    idle = running_ == 0 && line_.empty();
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
