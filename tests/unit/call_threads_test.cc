// CallThreads (RunSandbox's threads): every call runs at once on a thread of its own (never
// queued behind another), a finished call's thread serves the next one, at most max_parked
// wait, and the destructor ends them.
#include "rauhad/server/call_threads.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace rauha {
namespace {

using namespace std::chrono_literals;

// What the jobs report, and a way to wait (with a generous deadline) for a count of them.
struct Board {
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  int finished = 0;
  bool release = false;
  std::set<std::thread::id> threads;

  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 30s, done);
  }
};

TEST(CallThreads, ConcurrentCallsEachGetAThreadAtOnce) {
  Board board;
  {
    CallThreads threads(/*max_parked=*/1);
    for (int i = 0; i < 3; ++i) {
      threads.Run([&board] {
        std::unique_lock lock(board.mu);
        ++board.started;
        board.threads.insert(std::this_thread::get_id());
        board.cv.notify_all();
        // Held until all three run: a queued call would never start.
        board.cv.wait(lock, [&] { return board.release; });
        ++board.finished;
        board.cv.notify_all();
      });
    }
    EXPECT_TRUE(board.WaitFor([&] { return board.started == 3; })) << "a call was queued";
    {
      std::lock_guard lock(board.mu);
      board.release = true;
      board.cv.notify_all();
    }
    EXPECT_TRUE(board.WaitFor([&] { return board.finished == 3; }));
    EXPECT_EQ(board.threads.size(), 3u);
    EXPECT_EQ(board.threads.count(std::this_thread::get_id()), 0u);
  }  // the destructor ends the parked thread and waits for the others to end
}

TEST(CallThreads, AFinishedCallsThreadServesTheNextCall) {
  CallThreads threads(/*max_parked=*/2);
  Board board;
  std::thread::id first, second;
  threads.Run([&] {
    std::lock_guard lock(board.mu);
    first = std::this_thread::get_id();
    ++board.finished;
    board.cv.notify_all();
  });
  ASSERT_TRUE(board.WaitFor([&] { return board.finished == 1; }));
  // Parked once its job returned (the job's end and the parking are not one step).
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (threads.parked() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(threads.parked(), 1u);
  threads.Run([&] {
    std::lock_guard lock(board.mu);
    second = std::this_thread::get_id();
    ++board.finished;
    board.cv.notify_all();
  });
  ASSERT_TRUE(board.WaitFor([&] { return board.finished == 2; }));
  EXPECT_EQ(first, second) << "the second call made a thread while one was parked";
}

TEST(CallThreads, AtMostMaxParkedThreadsWait) {
  CallThreads threads(/*max_parked=*/1);
  Board board;
  for (int i = 0; i < 3; ++i) {
    threads.Run([&board] {
      std::unique_lock lock(board.mu);
      ++board.started;
      board.cv.notify_all();
      board.cv.wait(lock, [&] { return board.release; });
      ++board.finished;
      board.cv.notify_all();
    });
  }
  ASSERT_TRUE(board.WaitFor([&] { return board.started == 3; }));
  {
    std::lock_guard lock(board.mu);
    board.release = true;
    board.cv.notify_all();
  }
  ASSERT_TRUE(board.WaitFor([&] { return board.finished == 3; }));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (threads.parked() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  // Given time, the other two would have parked too if they could.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(threads.parked(), 1u);
}

TEST(CallThreads, WhatAJobHeldIsReleasedWhenItEnds) {
  CallThreads threads(/*max_parked=*/1);
  auto held = std::make_shared<int>(1);
  std::weak_ptr<int> watch = held;
  Board board;
  threads.Run([held = std::move(held), &board] {
    std::lock_guard lock(board.mu);
    ++board.finished;
    board.cv.notify_all();
  });
  ASSERT_TRUE(board.WaitFor([&] { return board.finished == 1; }));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!watch.expired() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(watch.expired()) << "a parked thread kept its last call's state";
}

}  // namespace
}  // namespace rauha
