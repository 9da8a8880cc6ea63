#include "rauhad/event_bus.h"

#include <chrono>

#include "rauha-common/timeutil.h"

namespace rauha {

std::optional<ZoneEventRecord> EventBus::Subscription::Next(int timeout_ms) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty(); })) {
    return std::nullopt;
  }
  ZoneEventRecord e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe(std::string zone_name) {
  auto sub = std::make_shared<Subscription>();
  sub->zone_filter_ = std::move(zone_name);
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventBus::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard lock(mu_);
  subs_.remove(sub);
}

void EventBus::Publish(std::string zone_name, std::string event_type, std::string message) {
  ZoneEventRecord e{std::move(zone_name), std::move(event_type), std::move(message), NowRfc3339()};
  std::lock_guard lock(mu_);
  for (const auto& sub : subs_) {
    if (!sub->zone_filter_.empty() && sub->zone_filter_ != e.zone_name) continue;
    {
      std::lock_guard sub_lock(sub->mu_);
      if (sub->queue_.size() >= kQueueLimit) {
        ++sub->dropped_;
        continue;
      }
      sub->queue_.push_back(e);
    }
    sub->cv_.notify_one();
  }
}

}  // namespace rauha
