// The ttrpc server's threads (server.h, thread_cache.h): kept and reused across connections and
// requests, bounded when idle, and never a bound on what runs at once: blocked handlers hold up
// no other request or connection, requests sent together are each answered on their stream,
// and a client that does not read stalls nothing but its own answers.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/ttrpc/thread_cache.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {
namespace {

using namespace std::chrono_literals;

// Waits up to 30 s for `done`; whether it came.
bool WaitFor(const std::function<bool()>& done) {
  for (auto until = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(1ms)) {
    if (done()) return true;
  }
  return done();
}

size_t TasksOfThisProcess() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    n++;
  }
  return n;
}

bool TaskAlive(pid_t tid) {
  struct stat st;
  return ::stat(("/proc/self/task/" + std::to_string(tid)).c_str(), &st) == 0;
}

TEST(ThreadCacheTest, TasksRunAtOnceBeyondTheIdleBoundAndOnlyThatManyStay) {
  ThreadCache cache(2, absl::Seconds(30));
  constexpr int kTasks = 10;
  std::atomic<int> started{0}, saw_all{0};
  for (int i = 0; i < kTasks; i++) {
    cache.Run([&] {
      started++;
      // Each waits for all the others: a cache that ran fewer at once would leave them here.
      if (WaitFor([&] { return started.load() == kTasks; })) saw_all++;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return saw_all.load() == kTasks; }))
      << "only " << saw_all.load() << " of " << kTasks << " tasks ran at once";
  EXPECT_TRUE(WaitFor([&] { return cache.threads() == 2 && cache.idle() == 2; }))
      << cache.threads() << " threads, " << cache.idle() << " idle";
}

TEST(ThreadCacheTest, AWaitingThreadTakesTheNextTask) {
  ThreadCache cache(4, absl::Seconds(30));
  std::set<pid_t> tids;
  for (int i = 0; i < 20; i++) {
    std::promise<pid_t> tid;
    cache.Run([&] { tid.set_value(::gettid()); });
    tids.insert(tid.get_future().get());
    ASSERT_TRUE(WaitFor([&] { return cache.idle() == 1; }));
  }
  EXPECT_EQ(tids.size(), 1u);
  EXPECT_EQ(cache.threads(), 1u);
}

TEST(ThreadCacheTest, WaitingThreadsExitAfterTheirTimeoutAndWithTheCache) {
  pid_t first = 0, second = 0;
  {
    ThreadCache cache(4, absl::Milliseconds(20));
    std::promise<pid_t> tid;
    cache.Run([&] { tid.set_value(::gettid()); });
    first = tid.get_future().get();
    EXPECT_TRUE(WaitFor([&] { return cache.threads() == 0; })) << "an idle thread stayed";
    EXPECT_TRUE(WaitFor([&] { return !TaskAlive(first); }));
  }
  {
    ThreadCache cache(4, absl::Seconds(600));
    std::promise<pid_t> tid;
    cache.Run([&] { tid.set_value(::gettid()); });
    second = tid.get_future().get();
    ASSERT_TRUE(WaitFor([&] { return cache.idle() == 1; }));
  }
  EXPECT_TRUE(WaitFor([&] { return !TaskAlive(second); })) << "a thread outlived its cache";
}

class TtrpcThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-ttrpc-threads-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s.sock";
    tasks_before_ = TasksOfThisProcess();
    server_.Register("t.v1.T", "Echo", [](const CallContext&, const std::string& p) {
      return absl::StatusOr<std::string>(p);
    });
    server_.Register("t.v1.T", "Tid", [](const CallContext&, const std::string&) {
      return absl::StatusOr<std::string>(std::to_string(::gettid()));
    });
    server_.Register("t.v1.T", "Block",
                     [released = released_](const CallContext&,
                                            const std::string&) -> absl::StatusOr<std::string> {
                       released.wait();
                       return std::string("released");
                     });
    // Sends data frames until one does not go (the answer went, or the connection closed).
    server_.Register("t.v1.T", "Flood", [](const CallContext& ctx, const std::string&) {
      const std::string chunk(kMaxPayload - 64, 'f');
      while (ctx.send_data(chunk)) {
      }
      return absl::StatusOr<std::string>("flooded");
    });
    auto listener = ListenUnix(path_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    server_.Serve(std::move(*listener));
  }
  void TearDown() override {
    Release();
    server_.Shutdown();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void Release() {
    if (!released_set_) release_.set_value();
    released_set_ = true;
  }
  absl::StatusOr<std::string> FreshConnectionCall(const std::string& method,
                                                  const std::string& payload = "") {
    auto fd = ConnectUnix(path_);
    if (!fd.ok()) return fd.status();
    return CallOnConnection(fd->get(), "t.v1.T", method, payload);
  }
  static std::string RequestFrame(uint32_t id, const std::string& method,
                                  const std::string& payload = "", int64_t timeout_nano = 0) {
    ::ttrpc::Request req;
    req.set_service("t.v1.T");
    req.set_method(method);
    req.set_payload(payload);
    if (timeout_nano > 0) req.set_timeout_nano(timeout_nano);
    return *EncodeFrame(id, MessageType::kRequest, 0, req.SerializeAsString());
  }

  std::string dir_, path_;
  size_t tasks_before_ = 0;
  Server server_;
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  bool released_set_ = false;
};

// The CLI's pattern: connect, one request, close. Once the first call has started the threads
// it needs, later calls start none: their handlers run on the same few threads (on the old
// server each ran on a new thread), and the process's thread count stays bounded.
TEST_F(TtrpcThreadsTest, SequentialCallsOnFreshConnectionsReuseThreadsAndStayBounded) {
  constexpr int kCalls = 100;
  std::set<std::string> handler_tids;
  size_t most_threads = 0;
  for (int i = 0; i < kCalls; i++) {
    // The threads of the previous call are back waiting (the one that handled it, the one that
    // read on to the connection's close): this call needs no new one.
    if (i > 0) {
      ASSERT_TRUE(WaitFor([&] { return server_.idle_threads() >= 2; }))
          << "call " << i << ": " << server_.idle_threads() << " idle threads";
    }
    auto tid = FreshConnectionCall("Tid");
    ASSERT_TRUE(tid.ok()) << tid.status();
    handler_tids.insert(*tid);
    most_threads = std::max(most_threads, server_.threads());
  }
  EXPECT_LE(handler_tids.size(), Server::kIdleThreads + 2)
      << "the handlers of " << kCalls << " calls ran on " << handler_tids.size() << " threads";
  EXPECT_LE(most_threads, Server::kIdleThreads + 2);
  // Counted by the kernel: the server's threads (kept ones, the acceptor, the deadline timer)
  // and no more.
  EXPECT_TRUE(WaitFor([&] {
    return TasksOfThisProcess() <= tasks_before_ + Server::kIdleThreads + 2;
  })) << TasksOfThisProcess()
      << " threads now, " << tasks_before_ << " before the server";
}

// containerd's pattern: one connection, calls that stay open (Wait) while others come. More
// blocked handlers than threads kept idle, and still every other request on the connection
// and on other connections is answered; once they end, the threads above the bound go.
TEST_F(TtrpcThreadsTest, ManyConcurrentRequestsOnOneConnectionWithBlockedOnes) {
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  constexpr int kBlocked = 2 * Server::kIdleThreads + 1;
  std::vector<std::future<absl::StatusOr<std::string>>> blocked;
  for (int i = 0; i < kBlocked; i++) {
    blocked.push_back(
        std::async(std::launch::async, [&] { return (*client)->Call("t.v1.T", "Block", ""); }));
  }
  ASSERT_TRUE(WaitFor([&] { return server_.active_requests() == kBlocked; }))
      << server_.active_requests() << " requests active";

  constexpr int kCallers = 8, kCallsEach = 25;
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; c++) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < kCallsEach; i++) {
        const std::string payload = std::to_string(c) + "/" + std::to_string(i);
        auto r = (*client)->Call("t.v1.T", "Echo", payload, absl::Seconds(30));
        if (r.ok() && *r == payload) answered++;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(answered.load(), kCallers * kCallsEach);
  for (int i = 0; i < 10; i++) {
    auto r = FreshConnectionCall("Echo", "other connection");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "other connection");
  }
  for (auto& b : blocked) EXPECT_EQ(b.wait_for(0s), std::future_status::timeout);

  Release();
  for (auto& b : blocked) {
    auto r = b.get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "released");
  }
  // Kept: the idle bound, the acceptor and this connection's reader.
  EXPECT_TRUE(WaitFor([&] { return server_.threads() <= Server::kIdleThreads + 2; }))
      << server_.threads() << " threads";
}

// Requests that arrive in one read are handed on with the rest of what was read: each is
// handled at once on its own thread and answered under its own stream id, the blocked first
// one last.
TEST_F(TtrpcThreadsTest, RequestsSentTogetherAreEachAnsweredOnTheirStream) {
  auto fd = ConnectUnix(path_);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(WriteAll(fd->get(), RequestFrame(1, "Block") + RequestFrame(3, "Echo", "three") +
                                      RequestFrame(5, "Echo", "five") +
                                      RequestFrame(7, "Echo", "seven"))
                  .ok());
  FrameDecoder decoder;
  std::map<uint32_t, std::string> answers;
  auto read_answers = [&](size_t want) {
    char buf[4096];
    while (answers.size() < want) {
      ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
      ASSERT_GT(n, 0) << "connection closed with " << answers.size() << " answers";
      decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
      while (auto f = decoder.Next()) {
        ASSERT_EQ(f->type, static_cast<uint8_t>(MessageType::kResponse));
        ::ttrpc::Response r;
        ASSERT_TRUE(r.ParseFromString(f->payload));
        EXPECT_EQ(r.status().code(), 0) << r.status().message();
        EXPECT_TRUE(answers.emplace(f->stream_id, r.payload()).second) << f->stream_id;
      }
    }
  };
  read_answers(3);
  EXPECT_EQ(answers, (std::map<uint32_t, std::string>{{3, "three"}, {5, "five"}, {7, "seven"}}));
  Release();
  read_answers(4);
  EXPECT_EQ(answers[1], "released");
}

// A client that sends a request with a deadline and one whose handler streams more than its
// socket holds, then reads nothing: the stream's write blocks. The deadline's answer must wait
// for that socket too, but nothing else may: on the old server the deadline timer waited for
// the connection's lock while holding the server's, and from then on no connection was
// accepted.
TEST_F(TtrpcThreadsTest, AClientThatDoesNotReadStallsNothingElse) {
  auto stuck = ConnectUnix(path_);
  ASSERT_TRUE(stuck.ok());
  const auto sent = std::chrono::steady_clock::now();
  constexpr auto kDeadline = 300ms;
  ASSERT_TRUE(WriteAll(stuck->get(),
                       RequestFrame(1, "Block", "", std::chrono::nanoseconds(kDeadline).count()) +
                           RequestFrame(3, "Flood"))
                  .ok());
  // Flood's first frame is on its way (and can never all fit: a frame is 4 MiB).
  ASSERT_TRUE(WaitFor([&] {
    int queued = 0;
    return ::ioctl(stuck->get(), FIONREAD, &queued) == 0 && queued > 0;
  }));
  // Past the deadline, other connections are still accepted and answered, at once.
  int calls = 0;
  while (std::chrono::steady_clock::now() < sent + kDeadline + 1s || calls < 5) {
    auto client = Client::Connect(path_);
    ASSERT_TRUE(client.ok()) << client.status();
    auto r = (*client)->Call("t.v1.T", "Echo", "unstalled", absl::Seconds(20));
    ASSERT_TRUE(r.ok()) << "call " << calls << ": " << r.status();
    EXPECT_EQ(*r, "unstalled");
    calls++;
  }
  // The stuck client goes: its flood ends (the write fails) and nothing of it stays.
  stuck->reset();
  Release();
  EXPECT_TRUE(WaitFor([&] { return server_.active_requests() == 0; }))
      << server_.active_requests() << " requests active";
  EXPECT_TRUE(WaitFor([&] { return server_.connections() == 0; }));
}

}  // namespace
}  // namespace rauha::ttrpc
