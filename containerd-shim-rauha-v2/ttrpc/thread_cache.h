// Threads the ttrpc server keeps for reuse. Each task starts at once on a thread of its own:
// a waiting one if there is one, a new one otherwise, so a task that blocks (a connection's
// reader, a handler that waits for its task's end or streams its output) never holds up
// another and the number of tasks running at once has no bound but the process's. A thread
// whose task ended waits for the next one instead of exiting: at most `max_idle` wait, each
// for at most `idle_timeout` (a containerd shim per pod should not keep threads it used once).
// What this saves per task: the thread's creation (clone, its stack from glibc's cache) and,
// above all, the new thread's first scheduling, on the path of every call of rauhad's fast
// path (eval/bench/README.md, "ttrpc: threads kept"). rauhad's CallThreads
// (rauhad/server/call_threads.h) is the same idea for its gRPC RunSandbox; this one is apart
// because the containerd shim links no rauhad code, its threads outlive their owner (a ttrpc
// Server does not wait for its handlers) and waiting ones time out.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "absl/time/time.h"

namespace rauha::ttrpc {

class ThreadCache {
 public:
  // `idle_timeout` finite.
  ThreadCache(size_t max_idle, absl::Duration idle_timeout);
  // Waiting threads exit; running tasks go on, and their threads exit when they end (the
  // threads are detached and hold only the cache's shared state).
  ~ThreadCache();
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;

  // Starts `task` now on a waiting thread, or on a new one when none waits.
  void Run(std::function<void()> task);
  // Threads alive: running a task or waiting for one.
  size_t threads() const;
  // Threads waiting for a task.
  size_t idle() const;

 private:
  struct State;
  static void Work(const std::shared_ptr<State>& state, std::function<void()> task);
  std::shared_ptr<State> state_;
};

}  // namespace rauha::ttrpc
