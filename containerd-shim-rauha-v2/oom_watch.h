// Event-driven OOM notification for the memory cgroup a process is in: on cgroup v1 an eventfd
// registered on memory.oom_control (cgroup.event_control), on v2 inotify on memory.events and
// its oom_kill count. A thread calls `on_oom` once per OOM the kernel reports; Stop() joins it
// and then reports one still pending, so that an OOM that ended the process is told before
// its exit.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::cshim {

class OomWatcher {
 public:
  // Watches the memory cgroup of `pid` (read from /proc/<pid>/cgroup); NotFound when it has
  // none (no memory controller).
  static absl::StatusOr<std::unique_ptr<OomWatcher>> Watch(pid_t pid, std::function<void()> on_oom);
  ~OomWatcher();  // Stop()
  void Stop();

 private:
  OomWatcher() = default;
  void Loop();
  // Reports what the kernel signalled since the last look (non-blocking).
  void Collect();

  std::function<void()> on_oom_;
  UniqueFd event_;          // v1: the eventfd; v2: the inotify fd
  UniqueFd stop_;           // eventfd
  std::string events_;      // v2: memory.events
  uint64_t oom_kills_ = 0;  // v2: last oom_kill count seen
  bool v2_ = false;
  std::mutex mu_;  // Collect
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace rauha::cshim
