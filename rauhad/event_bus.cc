#include "rauhad/event_bus.h"

#include "absl/status/status.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"

namespace rauha {

std::optional<ZoneEventRecord> EventBus::Subscription::Pop() {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return std::nullopt;
  ZoneEventRecord e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool EventBus::Subscription::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

uint64_t EventBus::Subscription::dropped() {
  std::lock_guard lock(mu_);
  return dropped_;
}

absl::StatusOr<std::shared_ptr<EventBus::Subscription>> EventBus::Subscribe(
    std::string zone_name, std::function<void()> on_ready) {
  auto sub = std::make_shared<Subscription>();
  sub->zone_filter_ = std::move(zone_name);
  sub->on_ready_ = std::move(on_ready);
  std::lock_guard lock(mu_);
  if (subs_.size() >= max_subscribers_) {
    return absl::ResourceExhaustedError(
        StrCat("rauhad serves at most ", max_subscribers_,
               " event watchers at once (--max-watchers) and that many are connected; close one "
               "(e.g. a `rauha events`) and retry"));
  }
  sub->closed_ = closed_;
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
    if (sub->on_ready_) sub->on_ready_();
  }
}

void EventBus::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (const auto& sub : subs_) {
    {
      std::lock_guard sub_lock(sub->mu_);
      sub->closed_ = true;
    }
    if (sub->on_ready_) sub->on_ready_();
  }
}

size_t EventBus::subscribers() {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace rauha
