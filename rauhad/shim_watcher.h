// Notices a zone's shim dying while nothing is talking to it: one thread holds a pidfd per shim
// in an epoll set and is woken by the kernel when one exits (no polling, no SIGCHLD: rauhad
// ignores it so the kernel reaps its shims).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "rauha-common/fd.h"

namespace rauha {

class ShimWatcher {
 public:
  // `on_exit` runs on the watcher's thread, once per watched shim that exits while watched.
  using OnExit = std::function<void(const std::string& zone_id, pid_t pid)>;

  explicit ShimWatcher(OnExit on_exit);
  ~ShimWatcher();  // Stop()
  ShimWatcher(const ShimWatcher&) = delete;
  ShimWatcher& operator=(const ShimWatcher&) = delete;

  // Watches `pid` as the shim of `zone_id` (replacing an earlier watch of the zone). NotFound
  // when no such process runs (it exited already, or `pid` is another program now).
  absl::Status Watch(const std::string& zone_id, pid_t pid);
  // The zone's shim is about to be stopped on purpose: its exit is no news.
  void Unwatch(const std::string& zone_id);
  // Ends the thread; no callback runs after it returns.
  void Stop();

 private:
  struct Entry {
    std::string zone_id;
    pid_t pid = 0;
    UniqueFd pidfd;
  };
  void Loop();

  OnExit on_exit_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: Stop() wakes the thread
  std::mutex mu_;
  std::map<int, Entry> by_fd_;             // pidfd -> its shim
  std::map<std::string, int> fd_of_zone_;  // zone id -> pidfd
  std::thread thread_;
};

}  // namespace rauha
