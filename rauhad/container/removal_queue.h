// Deleted containers' directories (upper layer, log), removed off the request path. Removing
// a container's files is unlinking every file its process wrote (tens of ms at load for a
// small upper layer), and `rauha run --rm` waits for the container to be gone from the API, not
// for its blocks to be freed. So a removal renames the directory into a trash directory beside
// it (one rename, same file system) and a thread of its own at a raised nice value removes it
// from there. What a crash leaves in the trash is removed by the next rauhad's Start; a clean
// stop (Stop) removes everything before it returns.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace rauha::container {

class RemovalQueue {
 public:
  // `trash_dir` is created at Start; it must be on the file system of the directories given
  // to Take (else Take removes them itself).
  explicit RemovalQueue(std::string trash_dir, int nice = 10);
  ~RemovalQueue();
  RemovalQueue(const RemovalQueue&) = delete;
  RemovalQueue& operator=(const RemovalQueue&) = delete;

  // Creates the trash directory, queues what an earlier rauhad left in it and starts the
  // thread.
  absl::Status Start();
  // Moves `dir` out of the way as `name` in the trash (gone from `dir` when this returns)
  // and queues its removal. Before Start, after Stop or when the rename is refused (another
  // file system), it is removed before this returns. OK when `dir` does not exist.
  absl::Status Take(const std::string& dir, const std::string& name);
  // Removes what is queued, then ends the thread. Idempotent.
  void Stop();
  const std::string& trash_dir() const { return trash_dir_; }

 private:
  void Run();

  std::string trash_dir_;
  int nice_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // names in the trash
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rauha::container
