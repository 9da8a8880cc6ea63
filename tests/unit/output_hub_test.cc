// OutputHub (a container's live output for its attached clients): a reader that falls behind
// holds the publisher back instead of losing output, and what releases a held publisher
// (the reader leaving, a stop of the container) does release it.
#include "rauhad/container/output_hub.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace rauha::container {
namespace {

constexpr size_t kChunk = 1u << 20;

std::string ChunkNumbered(int i) { return std::string(kChunk, static_cast<char>('a' + i % 26)); }

const auto kNever = [] { return false; };

TEST(OutputHubTest, ASlowReaderGetsEveryChunkInOrderAndTheQueueStaysBounded) {
  OutputHub hub;
  auto sub = hub.Subscribe();
  constexpr int kChunks = 24;  // 24 MiB through a queue of 4
  std::thread publisher([&] {
    for (int i = 0; i < kChunks; ++i) hub.Publish(false, ChunkNumbered(i), kNever);
    hub.End(0);
  });
  int got = 0;
  bool in_order = true;
  while (auto c = sub->Next(10000)) {
    in_order = in_order && c->data == ChunkNumbered(got);
    ++got;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the slow reader
  }
  publisher.join();
  EXPECT_EQ(got, kChunks);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(sub->ended());
  EXPECT_EQ(sub->exit_code(), 0);
}

TEST(OutputHubTest, UnsubscribingReleasesAPublisherHeldByTheLeavingReader) {
  OutputHub hub;
  auto sub = hub.Subscribe();
  // 5 MiB for a queue of 4 that nobody reads: the fifth waits until the reader leaves.
  std::thread publisher([&] {
    for (int i = 0; i < 5; ++i) hub.Publish(false, ChunkNumbered(i), kNever);
  });
  hub.Unsubscribe(sub);
  publisher.join();  // would hang (and the test time out) if the wait were not released
  int queued = 0;
  while (sub->Next(0)) ++queued;
  EXPECT_LE(queued, 4);
}

TEST(OutputHubTest, StopPacingReleasesAPublisherHeldByAReaderThatDoesNotRead) {
  OutputHub hub;
  auto sub = hub.Subscribe();
  std::thread publisher([&] {
    for (int i = 0; i < 6; ++i) hub.Publish(false, ChunkNumbered(i), kNever);
  });
  hub.StopPacing();
  publisher.join();
  int queued = 0;
  while (sub->Next(0)) ++queued;
  EXPECT_LE(queued, 4) << "the queue stays bounded: what did not fit is lost for this reader";
  // The next run paces again: End resets the release.
  hub.End(0);
  auto next = hub.Subscribe();
  std::thread held([&] {
    for (int i = 0; i < 6; ++i) hub.Publish(false, ChunkNumbered(i), kNever);
  });
  int got = 0;
  while (got < 6) {
    if (next->Next(10000))
      ++got;
    else
      break;
  }
  held.join();
  EXPECT_EQ(got, 6);
}

TEST(OutputHubTest, GiveUpReleasesAPublisher) {
  OutputHub hub;
  auto sub = hub.Subscribe();
  std::atomic<bool> stopping{false};
  std::thread publisher([&] {
    for (int i = 0; i < 6; ++i)
      hub.Publish(false, ChunkNumbered(i), [&] { return stopping.load(); });
  });
  stopping = true;
  publisher.join();
  hub.Unsubscribe(sub);
}

}  // namespace
}  // namespace rauha::container
