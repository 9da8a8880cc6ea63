// Fan-out of zone events to WatchEvents streams. Publishing never blocks on a slow watcher:
// each subscriber has a bounded queue and counts what it dropped.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rauha {

struct ZoneEventRecord {
  std::string zone_name;
  std::string event_type;  // "zone.created", "zone.state", "task.started", "task.exited", ...
  std::string message;
  std::string timestamp;  // RFC 3339
};

class EventBus {
 public:
  class Subscription {
   public:
    // Next event, or nullopt after `timeout_ms` without one.
    std::optional<ZoneEventRecord> Next(int timeout_ms);
    uint64_t dropped() const { return dropped_; }

   private:
    friend class EventBus;
    std::string zone_filter_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ZoneEventRecord> queue_;
    uint64_t dropped_ = 0;
  };

  // Events of `zone_name` only, or of every zone when it is empty.
  std::shared_ptr<Subscription> Subscribe(std::string zone_name);
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  void Publish(std::string zone_name, std::string event_type, std::string message);

 private:
  static constexpr size_t kQueueLimit = 4096;
  std::mutex mu_;
  std::list<std::shared_ptr<Subscription>> subs_;
};

}  // namespace rauha
