#include "rauhad/server/call_threads.h"

#include <system_error>
#include <thread>
#include <utility>

namespace rauha {

CallThreads::~CallThreads() {
  std::unique_lock lock(mu_);
  stop_ = true;
  cv_.notify_all();
  ended_.wait(lock, [this] { return live_ == 0; });
}

void CallThreads::Run(absl::AnyInvocable<void()> job) {
  {
    std::lock_guard lock(mu_);
    // Each parked thread takes one job: hand this one over only if one is still free.
    if (parked_ > handed_.size()) {
      handed_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
    ++live_;
  }
  try {
    std::thread([this, job = std::move(job)]() mutable { Work(std::move(job)); }).detach();
  } catch (const std::system_error&) {
    std::lock_guard lock(mu_);
    --live_;
    ended_.notify_all();
    throw;
  }
}

size_t CallThreads::parked() const {
  std::lock_guard lock(mu_);
  return parked_ - handed_.size();
}

void CallThreads::Work(absl::AnyInvocable<void()> job) {
  while (true) {
    job();
    job = nullptr;  // what the call held goes now, not when the next call comes
    std::unique_lock lock(mu_);
    if (stop_ || parked_ >= max_parked_) break;
    ++parked_;
    cv_.wait(lock, [this] { return stop_ || !handed_.empty(); });
    --parked_;
    if (handed_.empty()) break;  // stopping, and no job was handed over
    job = std::move(handed_.front());
    handed_.pop_front();
  }
  // Told under the lock: the destructor may free this object as soon as it sees live_ == 0.
  std::lock_guard lock(mu_);
  --live_;
  ended_.notify_all();
}

}  // namespace rauha
