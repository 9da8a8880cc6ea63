// Threads for calls that block for as long as their task runs (RunSandbox), kept for the next
// call once their call is done: a call gets a parked thread when there is one and a new thread
// otherwise, never a place in a queue (the call gate bounds how many run). Making a thread per
// call cost ~70-100 us of clone, scheduling and exit on this 2-CPU machine under load; waking
// a parked one ~10.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

#include "absl/functional/any_invocable.h"

namespace rauha {

class CallThreads {
 public:
  // At most `max_parked` threads wait for a call; more end when their call is done.
  explicit CallThreads(size_t max_parked = 4) : max_parked_(max_parked) {}
  // Ends the parked threads and waits for every thread to end: the owner makes sure no call
  // is still running (its jobs end first).
  ~CallThreads();
  CallThreads(const CallThreads&) = delete;
  CallThreads& operator=(const CallThreads&) = delete;

  // Runs `job` on a thread of its own, now. Throws std::system_error, as std::thread does,
  // when no thread can be made.
  void Run(absl::AnyInvocable<void()> job);

  size_t parked() const;

 private:
  void Work(absl::AnyInvocable<void()> job);

  const size_t max_parked_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                     // a parked thread's job came, or stop_
  std::condition_variable ended_;                  // a thread ended
  std::deque<absl::AnyInvocable<void()>> handed_;  // jobs given to parked threads, not yet taken
  size_t parked_ = 0;
  size_t live_ = 0;
  bool stop_ = false;
};

}  // namespace rauha
