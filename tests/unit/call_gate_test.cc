// CallGate: how many expensive calls run, how many wait, and what the rest are told.
#include "rauhad/call_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace rauha {
namespace {

TEST(CallGateTest, RunsUpToTheBoundThenQueuesThenRefuses) {
  CallGate gate("zone operations", 2, 1);
  auto a = gate.Acquire({});
  auto b = gate.Acquire({});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(gate.running(), 2u);
  // The third waits; the fourth finds the line full.
  auto third = std::async(std::launch::async, [&] { return gate.Acquire({}); });
  while (gate.waiting() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto fourth = gate.Acquire({});
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fourth.status().message(),
            "rauhad is busy: 2 zone operations are in progress and 1 wait, the most it queues; "
            "retry later");
  *a = CallGate::Slot();  // releases: the waiting call runs
  auto got = third.get();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(gate.running(), 2u);
  EXPECT_EQ(gate.waiting(), 0u);
}

// A released slot goes straight to the head of the line: between the release and the
// waiter waking, the gate never reports fewer calls running than it holds (a caller refused
// in that moment was told "0 in progress and 1 wait").
TEST(CallGateTest, AReleasedSlotPassesToTheWaiterWithoutADip) {
  CallGate gate("zone operations", 1, 1);
  auto a = gate.Acquire({});
  ASSERT_TRUE(a.ok());
  auto waiter = std::async(std::launch::async, [&] { return gate.Acquire({}); });
  while (gate.waiting() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  *a = CallGate::Slot();
  EXPECT_EQ(gate.running(), 1u);
  EXPECT_EQ(gate.waiting(), 0u);
  auto got = waiter.get();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(gate.running(), 1u);
  *got = CallGate::Slot();
  EXPECT_EQ(gate.running(), 0u);
}

TEST(CallGateTest, WithoutAQueueRefusesAtOnce) {
  CallGate gate("RunSandbox/WaitTask calls", 1, 0);
  auto a = gate.Acquire({});
  ASSERT_TRUE(a.ok());
  auto b = gate.Acquire({});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("1 RunSandbox/WaitTask calls are in progress, the most"),
            std::string::npos);
}

TEST(CallGateTest, AWaiterLeavesOnCancelAndDeadline) {
  CallGate gate("zone operations", 1, 4);
  auto held = gate.Acquire({});
  ASSERT_TRUE(held.ok());
  std::atomic<bool> cancel{false};
  auto cancelled =
      std::async(std::launch::async, [&] { return gate.Acquire([&] { return cancel.load(); }); });
  while (gate.waiting() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cancel = true;
  EXPECT_EQ(cancelled.get().status().code(), absl::StatusCode::kCancelled);
  auto late = gate.Acquire({}, std::chrono::system_clock::now() + std::chrono::milliseconds(60));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(gate.waiting(), 0u);
}

TEST(CallGateTest, IdleHookRunsWhenTheBurstEnds) {
  int idle = 0;
  CallGate gate("zone operations", 2, 2, [&] { ++idle; });
  {
    auto a = gate.Acquire({});
    auto b = gate.Acquire({});
    *a = CallGate::Slot();
    EXPECT_EQ(idle, 0);  // b still runs
  }
  EXPECT_EQ(idle, 1);
}

}  // namespace
}  // namespace rauha
