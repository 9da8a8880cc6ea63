#include "rauhad/container/output_hub.h"

#include <algorithm>
#include <chrono>

namespace rauha::container {

std::optional<OutputSubscription::Chunk> OutputSubscription::Next(int wait_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return !queue_.empty() || ended_; });
  if (queue_.empty()) return std::nullopt;
  Chunk c = std::move(queue_.front());
  queue_.pop_front();
  queued_ -= c.data.size();
  room_.notify_all();
  return c;
}

bool OutputSubscription::ended() const {
  std::lock_guard lock(mu_);
  return ended_ && queue_.empty();
}

std::optional<int> OutputSubscription::exit_code() const {
  std::lock_guard lock(mu_);
  return exit_code_;
}

std::shared_ptr<OutputSubscription> OutputHub::Subscribe() {
  auto sub = std::make_shared<OutputSubscription>();
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void OutputHub::Unsubscribe(const std::shared_ptr<OutputSubscription>& sub) {
  {
    std::lock_guard lock(mu_);
    std::erase(subs_, sub);
  }
  // A Publish waiting for room in it goes on (it holds its own reference, not mu_).
  std::lock_guard inner(sub->mu_);
  sub->unsubscribed_ = true;
  sub->room_.notify_all();
}

void OutputHub::Publish(bool is_stderr, std::string_view data,
                        const std::function<bool()>& give_up) {
  std::vector<std::shared_ptr<OutputSubscription>> subs;
  {
    std::lock_guard lock(mu_);
    subs = subs_;
  }
  // Waiting without mu_, so that a client detaching (Unsubscribe) is never held up by it.
  for (const auto& sub : subs) {
    std::unique_lock inner(sub->mu_);
    // A chunk larger than the whole queue waits only for the queue to empty.
    auto fits = [&] {
      return sub->queued_ == 0 || sub->queued_ + data.size() <= OutputSubscription::kMaxQueued;
    };
    while (!fits() && !sub->unsubscribed_ && !sub->ended_ && !unpaced_ && !give_up()) {
      sub->room_.wait_for(inner, std::chrono::milliseconds(100));
    }
    if (!fits() || sub->unsubscribed_ || sub->ended_) continue;
    sub->queue_.push_back({is_stderr, std::string(data)});
    sub->queued_ += data.size();
    sub->cv_.notify_all();
  }
}

void OutputHub::StopPacing() {
  unpaced_ = true;
  std::lock_guard lock(mu_);
  for (const auto& sub : subs_) {
    std::lock_guard inner(sub->mu_);
    sub->room_.notify_all();
  }
}

void OutputHub::End(std::optional<int> exit_code) {
  std::lock_guard lock(mu_);
  for (const auto& sub : subs_) {
    std::lock_guard inner(sub->mu_);
    sub->ended_ = true;
    sub->exit_code_ = exit_code;
    sub->cv_.notify_all();
    sub->room_.notify_all();
  }
  subs_.clear();
  unpaced_ = false;
}

}  // namespace rauha::container
