// What rauhad's shim endpoint relies on in the ttrpc code: a client call another thread
// cancels ends at once with Cancelled, the server's handler learns that its client went away
// when the connection closes (ttrpc has no cancel message), and a server's peer filter closes
// refused connections before reading anything from them.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"

namespace rauha::ttrpc {
namespace {

using namespace std::chrono_literals;

class TtrpcCancelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-ttrpc-cancel-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s.sock";
    // Blocks until its connection closes (or 60 s), then says whether it saw the close.
    server_.Register(
        "wait.v1.Wait", "UntilGone",
        [this](const CallContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
          started_.set_value();
          auto until = std::chrono::steady_clock::now() + 60s;
          while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(10ms);
          }
          saw_close_.set_value(ctx.cancelled());
          return std::string("gone");
        });
    server_.Register("wait.v1.Wait", "Echo", [](const CallContext&, const std::string& p) {
      return absl::StatusOr<std::string>(p);
    });
  }
  void Serve() {
    auto listener = ListenUnix(path_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    server_.Serve(std::move(*listener));
  }
  void TearDown() override {
    server_.Shutdown();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  std::string dir_, path_;
  Server server_;
  std::promise<void> started_;
  std::promise<bool> saw_close_;
};

TEST_F(TtrpcCancelTest, CancelledCallEndsAtOnceAndTheHandlerSeesTheConnectionClose) {
  Serve();
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  CallCanceller cancel;
  auto call = std::async(std::launch::async, [&] {
    return (*client)->Call("wait.v1.Wait", "UntilGone", "", absl::InfiniteDuration(), {}, &cancel);
  });
  ASSERT_EQ(started_.get_future().wait_for(30s), std::future_status::ready);
  cancel.Cancel();
  ASSERT_EQ(call.wait_for(30s), std::future_status::ready) << "the cancelled call did not return";
  EXPECT_EQ(call.get().status().code(), absl::StatusCode::kCancelled);
  // The connection still serves other calls.
  auto echo = (*client)->Call("wait.v1.Wait", "Echo", "still here");
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "still here");
  // The server's handler learns of it when the client goes.
  auto saw = saw_close_.get_future();
  EXPECT_EQ(saw.wait_for(100ms), std::future_status::timeout) << "the handler ended too early";
  client->reset();
  ASSERT_EQ(saw.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(saw.get());
}

TEST_F(TtrpcCancelTest, CallCancelledBeforeItStartsIsNotSent) {
  Serve();
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  CallCanceller cancel;
  cancel.Cancel();
  auto r = (*client)->Call("wait.v1.Wait", "UntilGone", "", absl::InfiniteDuration(), {}, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server_.active_requests(), 0);
}

TEST_F(TtrpcCancelTest, PeerFilterClosesRefusedConnectionsUnread) {
  std::atomic<int> seen_uid{-1};
  server_.SetPeerFilter([&](const ucred& peer) {
    seen_uid = static_cast<int>(peer.uid);
    return false;
  });
  Serve();
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  // The server closes it without an answer: the client's reader sees the end.
  for (int i = 0; i < 3000 && (*client)->connected(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE((*client)->connected());
  auto r = (*client)->Call("wait.v1.Wait", "Echo", "hello", absl::Seconds(30));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(seen_uid.load(), static_cast<int>(::geteuid()));
  EXPECT_EQ(server_.connections(), 0u);
}

TEST_F(TtrpcCancelTest, PeerFilterAdmitsWhatItAllows) {
  const uid_t self = ::geteuid();
  server_.SetPeerFilter([self](const ucred& peer) { return peer.uid == self; });
  Serve();
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->Call("wait.v1.Wait", "Echo", "hello", absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "hello");
}

}  // namespace
}  // namespace rauha::ttrpc
