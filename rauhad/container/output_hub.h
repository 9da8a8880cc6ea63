// The live output of a container's process, fanned out to the clients attached to it (Attach).
// The shim writes the log whoever listens; this is only for those who watch now. A reader that
// falls more than kMaxQueued bytes behind loses output (the log keeps it), so a slow client
// never grows rauhad.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rauha::container {

class OutputSubscription {
 public:
  static constexpr size_t kMaxQueued = 4u << 20;
  struct Chunk {
    bool is_stderr = false;
    std::string data;
  };
  // The next chunk; nullopt once the process ended and everything was taken, or after
  // `wait_ms` without anything (check ended()).
  std::optional<Chunk> Next(int wait_ms);
  bool ended() const;
  std::optional<int> exit_code() const;

 private:
  friend class OutputHub;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  size_t queued_ = 0;
  bool ended_ = false;
  std::optional<int> exit_code_;
};

class OutputHub {
 public:
  std::shared_ptr<OutputSubscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<OutputSubscription>& sub);
  void Publish(bool is_stderr, std::string_view data);
  // The process ended: every subscription gets `exit_code` after what is queued, and is
  // dropped (new ones subscribe for the next start).
  void End(std::optional<int> exit_code);

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<OutputSubscription>> subs_;
};

}  // namespace rauha::container
