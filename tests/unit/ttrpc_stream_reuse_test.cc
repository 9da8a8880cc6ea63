// A stream id used again on a connection once its answer went out (server.h): nothing of the
// old request (its deadline, its handler's late answer or data frame) reaches the new one.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {
namespace {

using namespace std::chrono_literals;

class TtrpcStreamReuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-ttrpc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s.sock";
    for (const char* gate : {"a", "b"}) released_[gate] = gates_[gate].get_future().share();
    server_.Register("echo.v1.Echo", "Echo", [](const CallContext&, const std::string& p) {
      return absl::StatusOr<std::string>(p);
    });
    // Waits for the gate named by its payload, then tries a data frame, then answers.
    server_.Register(
        "echo.v1.Echo", "Wait",
        [this](const CallContext& ctx, const std::string& gate) -> absl::StatusOr<std::string> {
          released_.at(gate).wait();
          if (ctx.send_data("data of " + gate)) data_sent_++;
          return "answer of " + gate;
        });
    auto listener = ListenUnix("unix://" + path_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    server_.Serve(std::move(*listener));
    auto fd = ConnectUnix(path_);
    ASSERT_TRUE(fd.ok()) << fd.status();
    fd_ = std::move(*fd);
  }
  void TearDown() override {
    for (auto& [name, gate] : gates_) {
      if (!opened_.count(name)) gate.set_value();
    }
    // Handlers outlive Shutdown; these touch the fixture.
    for (int i = 0; i < 30000 && server_.active_requests() != 0; ++i) {
      std::this_thread::sleep_for(1ms);
    }
    fd_.reset();
    server_.Shutdown();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void Open(const std::string& gate) {
    gates_.at(gate).set_value();
    opened_[gate] = true;
  }
  void Send(uint32_t id, const std::string& method, const std::string& payload,
            absl::Duration timeout) {
    ::ttrpc::Request req;
    req.set_service("echo.v1.Echo");
    req.set_method(method);
    req.set_payload(payload);
    if (timeout != absl::ZeroDuration()) req.set_timeout_nano(absl::ToInt64Nanoseconds(timeout));
    ASSERT_TRUE(
        WriteAll(fd_.get(), *EncodeFrame(id, MessageType::kRequest, 0, req.SerializeAsString()))
            .ok());
  }
  // The next frame from the server within `wait`, or nullopt.
  std::optional<Frame> Next(std::chrono::milliseconds wait) {
    auto until = std::chrono::steady_clock::now() + wait;
    while (true) {
      if (std::optional<Frame> f = decoder_.Next()) return f;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd p{fd_.get(), POLLIN, 0};
      if (left.count() < 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return std::nullopt;
      }
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n <= 0) return std::nullopt;
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }
  // The next frame, which must be the response on `id`.
  ::ttrpc::Response Response(uint32_t id) {
    std::optional<Frame> f = Next(30s);
    if (!f) {
      ADD_FAILURE() << "no frame";
      return {};
    }
    EXPECT_EQ(f->type, static_cast<uint8_t>(MessageType::kResponse)) << f->payload;
    EXPECT_EQ(f->stream_id, id);
    ::ttrpc::Response r;
    EXPECT_TRUE(r.ParseFromString(f->payload));
    return r;
  }

  std::string dir_, path_;
  std::map<std::string, std::promise<void>> gates_;
  std::map<std::string, std::shared_future<void>> released_;
  std::map<std::string, bool> opened_;
  std::atomic<int> data_sent_{0};
  Server server_;  // after what its handlers touch: it goes first
  UniqueFd fd_;
  FrameDecoder decoder_;
};

TEST_F(TtrpcStreamReuseTest, AnsweredRequestsDeadlineDoesNotAnswerTheNextOnItsStream) {
  Send(1, "Echo", "quick", absl::Milliseconds(100));
  ::ttrpc::Response quick = Response(1);
  EXPECT_EQ(quick.status().code(), 0) << quick.status().message();
  EXPECT_EQ(quick.payload(), "quick");
  // The same stream again, with no deadline, still running well past the first one's.
  Send(1, "Wait", "a", absl::ZeroDuration());
  std::optional<Frame> early = Next(500ms);
  EXPECT_FALSE(early) << "stream 1 answered before its handler: " << early->payload;
  Open("a");
  std::optional<Frame> data = Next(30s);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->type, static_cast<uint8_t>(MessageType::kData));
  EXPECT_EQ(data->payload, "data of a");
  ::ttrpc::Response real = Response(1);
  EXPECT_EQ(real.status().code(), 0) << real.status().message();
  EXPECT_EQ(real.payload(), "answer of a");
}

TEST_F(TtrpcStreamReuseTest, TimedOutRequestsLateAnswerDoesNotAnswerTheNextOnItsStream) {
  Send(1, "Wait", "a", absl::Milliseconds(100));
  ::ttrpc::Response expired = Response(1);
  EXPECT_EQ(expired.status().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  // The same stream again, with a longer deadline, while the first handler still runs.
  Send(1, "Wait", "b", absl::Seconds(30));
  ASSERT_TRUE([&] {
    for (int i = 0; i < 3000 && server_.active_requests() != 2; ++i)
      std::this_thread::sleep_for(1ms);
    return server_.active_requests() == 2;
  }());
  Open("a");  // its data frame and answer go nowhere
  for (int i = 0; i < 3000 && server_.active_requests() != 1; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(server_.active_requests(), 1);
  EXPECT_EQ(data_sent_.load(), 0);
  std::optional<Frame> stale = Next(100ms);
  EXPECT_FALSE(stale) << "the first request's frame on stream 1: " << stale->payload;
  Open("b");
  std::optional<Frame> data = Next(30s);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->type, static_cast<uint8_t>(MessageType::kData));
  EXPECT_EQ(data->payload, "data of b");
  ::ttrpc::Response real = Response(1);
  EXPECT_EQ(real.status().code(), 0) << real.status().message();
  EXPECT_EQ(real.payload(), "answer of b");
  EXPECT_EQ(data_sent_.load(), 1);
}

}  // namespace
}  // namespace rauha::ttrpc
