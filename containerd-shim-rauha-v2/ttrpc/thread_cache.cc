#include "containerd-shim-rauha-v2/ttrpc/thread_cache.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace rauha::ttrpc {

// A waiting thread's mailbox, on that thread's stack: Run puts the task in and wakes exactly
// that thread (no herd on a shared queue).
struct Slot {
  std::condition_variable cv;
  std::function<void()> task;
};

struct ThreadCache::State {
  State(size_t max_idle, absl::Duration idle_timeout)
      : max_idle(max_idle), idle_timeout(absl::ToChronoNanoseconds(idle_timeout)) {}
  const size_t max_idle;
  const std::chrono::nanoseconds idle_timeout;
  mutable std::mutex mu;
  std::vector<Slot*> idle;  // the most recently parked last: its stack is the warmest
  size_t threads = 0;
  bool stopping = false;
};

ThreadCache::ThreadCache(size_t max_idle, absl::Duration idle_timeout)
    : state_(std::make_shared<State>(max_idle, idle_timeout)) {}

ThreadCache::~ThreadCache() {
  std::lock_guard lock(state_->mu);
  state_->stopping = true;
  for (Slot* slot : state_->idle) slot->cv.notify_one();
}

void ThreadCache::Run(std::function<void()> task) {
  {
    std::lock_guard lock(state_->mu);
    if (!state_->idle.empty()) {
      Slot* slot = state_->idle.back();
      state_->idle.pop_back();
      slot->task = std::move(task);
      // Under the lock: once it is released the thread may run the task, end, and take its
      // slot with it.
      slot->cv.notify_one();
      return;
    }
    state_->threads++;
  }
  std::thread([state = state_, task = std::move(task)]() mutable {
    Work(state, std::move(task));
  }).detach();
}

size_t ThreadCache::threads() const {
  std::lock_guard lock(state_->mu);
  return state_->threads;
}

size_t ThreadCache::idle() const {
  std::lock_guard lock(state_->mu);
  return state_->idle.size();
}

void ThreadCache::Work(const std::shared_ptr<State>& state, std::function<void()> task) {
  Slot slot;
  std::unique_lock lock(state->mu, std::defer_lock);
  while (true) {
    task();
    task = nullptr;  // what it captured goes now, not when the next task comes
    lock.lock();
    if (state->stopping || state->idle.size() >= state->max_idle) break;
    state->idle.push_back(&slot);
    const auto until = std::chrono::steady_clock::now() + state->idle_timeout;
    slot.cv.wait_until(lock, until, [&] { return slot.task != nullptr || state->stopping; });
    if (slot.task == nullptr) {
      // Timed out or stopping: nobody took the slot, so it is still listed.
      std::erase(state->idle, &slot);
      break;
    }
    task = std::move(slot.task);
    slot.task = nullptr;
    lock.unlock();
  }
  state->threads--;
}

}  // namespace rauha::ttrpc
