// The live output of a container's process, fanned out to the clients attached to it (Attach).
// The shim writes the log whoever listens; this is only for those who watch now. A reader that
// falls kMaxQueued bytes behind holds the output back: Publish waits for room, rauhad's
// watcher stops reading the shim's paced stream, the shim stops reading the process's pipe or
// terminal and the process blocks on its write, as with a pipe. So memory stays bounded and a
// slow client loses nothing. A stop of the container releases the hold (StopPacing): a client
// that does not read then loses what does not fit, rather than holding the stop up.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
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
  std::condition_variable cv_;    // a chunk came or the process ended (the reader waits)
  std::condition_variable room_;  // a chunk was taken or the subscription ended (Publish waits)
  std::deque<Chunk> queue_;
  size_t queued_ = 0;
  bool ended_ = false;
  bool unsubscribed_ = false;
  std::optional<int> exit_code_;
};

class OutputHub {
 public:
  std::shared_ptr<OutputSubscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<OutputSubscription>& sub);
  // Queues `data` for every subscriber, waiting while one's queue is full until it has room,
  // it unsubscribes, StopPacing, or `give_up()` (polled every 100 ms); a chunk that still does
  // not fit then is lost for that subscriber. One publisher at a time (the watcher).
  void Publish(bool is_stderr, std::string_view data, const std::function<bool()>& give_up);
  // The container is being stopped: Publish waits for no one until End.
  void StopPacing();
  // The process ended: every subscription gets `exit_code` after what is queued, and is
  // dropped (new ones subscribe for the next start).
  void End(std::optional<int> exit_code);

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<OutputSubscription>> subs_;
  std::atomic<bool> unpaced_{false};
};

}  // namespace rauha::container
