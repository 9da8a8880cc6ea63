// Fan-out of zone events to WatchEvents streams. Publishing never blocks on a slow watcher:
// each subscriber has a bounded queue and counts what it dropped. A subscriber is told that
// an event is ready through a callback, so a watcher needs no thread of its own while it waits.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace rauha {

struct ZoneEventRecord {
  std::string zone_name;
  std::string event_type;  // "zone.created", "zone.state", "task.started", "task.exited", ...
  std::string message;
  std::string timestamp;  // RFC 3339
};

class EventBus {
 public:
  // The default bound on concurrent subscribers (rauhad --max-watchers).
  static constexpr size_t kDefaultMaxSubscribers = 256;

  class Subscription {
   public:
    // The oldest queued event, if any; never blocks.
    std::optional<ZoneEventRecord> Pop();
    // True once the bus closed (rauhad is stopping): the watcher should end its stream.
    bool closed();
    uint64_t dropped();

   private:
    friend class EventBus;
    std::string zone_filter_;
    std::function<void()> on_ready_;
    std::mutex mu_;
    std::deque<ZoneEventRecord> queue_;
    uint64_t dropped_ = 0;
    bool closed_ = false;
  };

  explicit EventBus(size_t max_subscribers = kDefaultMaxSubscribers)
      : max_subscribers_(max_subscribers) {}

  // Events of `zone_name` only, or of every zone when it is empty. `on_ready` runs (on the
  // publisher's thread, under the bus lock: keep it short and never call back into the bus)
  // after each event is queued and once when the bus closes. RESOURCE_EXHAUSTED when
  // max_subscribers are subscribed.
  absl::StatusOr<std::shared_ptr<Subscription>> Subscribe(std::string zone_name,
                                                          std::function<void()> on_ready);
  // After this returns, the subscription's on_ready is never called again.
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  void Publish(std::string zone_name, std::string event_type, std::string message);
  // Marks every subscription closed and wakes it; later Subscribe calls get a closed one.
  void Close();

  size_t subscribers();

 private:
  static constexpr size_t kQueueLimit = 4096;
  const size_t max_subscribers_;
  std::mutex mu_;
  bool closed_ = false;
  std::list<std::shared_ptr<Subscription>> subs_;
};

}  // namespace rauha
