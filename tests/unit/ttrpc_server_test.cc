// The ttrpc server and client over a real unix socket: concurrency (a blocked call does not
// hold up others), per-request timeouts, the status model, and a server's answers to
// malformed, oversized and foreign frames written by hand.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "ttrpc.pb.h"

namespace rauha::ttrpc {
namespace {

class TtrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-ttrpc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s.sock";
    server_.Register("echo.v1.Echo", "Echo", [](const CallContext&, const std::string& p) {
      return absl::StatusOr<std::string>(p);
    });
    server_.Register("echo.v1.Echo", "Fail", [](const CallContext&, const std::string&) {
      return absl::StatusOr<std::string>(absl::NotFoundError("no task \"x\""));
    });
    server_.Register("echo.v1.Echo", "Block",
                     [released = released_future_](
                         const CallContext&, const std::string&) -> absl::StatusOr<std::string> {
                       released.wait();
                       return std::string("released");
                     });
    server_.Register("echo.v1.Echo", "Metadata", [](const CallContext& ctx, const std::string&) {
      return absl::StatusOr<std::string>(ctx.Metadata("containerd-namespace-ttrpc"));
    });
    server_.Register("echo.v1.Echo", "Big", [](const CallContext&, const std::string&) {
      return absl::StatusOr<std::string>(std::string(kMaxPayload + 1, 'b'));
    });
    auto listener = ListenUnix("unix://" + path_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    server_.Serve(std::move(*listener));
  }
  void TearDown() override {
    if (!released_) release_.set_value();
    server_.Shutdown();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::unique_ptr<Client> Connect() {
    auto client = Client::Connect(path_);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  // Writes raw bytes on a fresh connection and reads one response frame.
  ::ttrpc::Response RawExchange(const std::string& bytes, uint32_t* stream_id) {
    auto fd = ConnectUnix(path_);
    EXPECT_TRUE(fd.ok());
    EXPECT_TRUE(WriteAll(fd->get(), bytes).ok());
    FrameDecoder decoder;
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
      if (n <= 0) {
        ADD_FAILURE() << "connection closed without a response";
        return {};
      }
      decoder.Feed(std::string_view(buf, n));
      if (auto f = decoder.Next()) {
        EXPECT_EQ(f->type, static_cast<uint8_t>(MessageType::kResponse));
        *stream_id = f->stream_id;
        ::ttrpc::Response r;
        EXPECT_TRUE(r.ParseFromString(f->payload));
        return r;
      }
    }
  }
  static std::string RequestFrame(uint32_t id, const std::string& method,
                                  const std::string& payload = "") {
    ::ttrpc::Request req;
    req.set_service("echo.v1.Echo");
    req.set_method(method);
    req.set_payload(payload);
    return *EncodeFrame(id, MessageType::kRequest, 0, req.SerializeAsString());
  }

  std::string dir_, path_;
  Server server_;
  std::promise<void> release_;
  std::shared_future<void> released_future_ = release_.get_future().share();
  bool released_ = false;
};

TEST_F(TtrpcServerTest, EchoesPayloadAndCarriesMetadata) {
  auto client = Connect();
  auto r = client->Call("echo.v1.Echo", "Echo", "hello");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "hello");
  auto md = client->Call("echo.v1.Echo", "Metadata", "", absl::InfiniteDuration(),
                         {{"containerd-namespace-ttrpc", "k8s.io"}});
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(*md, "k8s.io");
}

TEST_F(TtrpcServerTest, ErrorStatusKeepsCodeAndMessage) {
  auto client = Connect();
  auto r = client->Call("echo.v1.Echo", "Fail", "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no task \"x\"");
}

TEST_F(TtrpcServerTest, UnknownServiceOrMethodIsUnimplemented) {
  auto client = Connect();
  EXPECT_EQ(client->Call("echo.v1.Echo", "Nope", "").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client->Call("other.Service", "Echo", "").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST_F(TtrpcServerTest, BlockedCallDoesNotHoldUpOthersOnTheSameConnection) {
  auto client = Connect();
  auto blocked =
      std::async(std::launch::async, [&] { return client->Call("echo.v1.Echo", "Block", ""); });
  // Answered while Block is still open (Block can only end when we release it below).
  for (int i = 0; i < 20; i++) {
    auto r = client->Call("echo.v1.Echo", "Echo", std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, std::to_string(i));
  }
  EXPECT_EQ(blocked.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  release_.set_value();
  released_ = true;
  auto r = blocked.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "released");
}

TEST_F(TtrpcServerTest, TimeoutEndsTheCallWithDeadlineExceeded) {
  auto client = Connect();
  auto r = client->Call("echo.v1.Echo", "Block", "", absl::Milliseconds(100));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  // The server answered the expired stream itself: a raw request with timeout_nano gets it.
  ::ttrpc::Request req;
  req.set_service("echo.v1.Echo");
  req.set_method("Block");
  req.set_timeout_nano(50'000'000);
  uint32_t id = 0;
  auto resp = RawExchange(*EncodeFrame(5, MessageType::kRequest, 0, req.SerializeAsString()), &id);
  EXPECT_EQ(id, 5u);
  EXPECT_EQ(resp.status().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(TtrpcServerTest, GarbageRequestPayloadIsInvalidArgumentOnItsStream) {
  uint32_t id = 0;
  auto resp = RawExchange(*EncodeFrame(3, MessageType::kRequest, 0, "\xff\xff\xff"), &id);
  EXPECT_EQ(id, 3u);
  EXPECT_EQ(resp.status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
}

TEST_F(TtrpcServerTest, EvenStreamIdIsRefused) {
  uint32_t id = 0;
  auto resp = RawExchange(RequestFrame(2, "Echo", "x"), &id);
  EXPECT_EQ(id, 2u);
  EXPECT_EQ(resp.status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(resp.status().message().find("odd"), std::string::npos);
}

TEST_F(TtrpcServerTest, OversizedRequestIsResourceExhaustedAndTheConnectionGoesOn) {
  // 5 MiB announced and sent, then a normal request on the same connection.
  std::string bytes("\x00\x50\x00\x00\x00\x00\x00\x07\x01\x00", 10);
  bytes += std::string(5u << 20, 'x');
  bytes += RequestFrame(9, "Echo", "still here");
  auto fd = ConnectUnix(path_);
  ASSERT_TRUE(fd.ok());
  std::thread writer([&] { EXPECT_TRUE(WriteAll(fd->get(), bytes).ok()); });
  FrameDecoder decoder;
  std::vector<Frame> frames;
  char buf[4096];
  while (frames.size() < 2) {
    ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    decoder.Feed(std::string_view(buf, n));
    while (auto f = decoder.Next()) frames.push_back(std::move(*f));
  }
  writer.join();
  ::ttrpc::Response first, second;
  ASSERT_TRUE(first.ParseFromString(frames[0].payload));
  ASSERT_TRUE(second.ParseFromString(frames[1].payload));
  EXPECT_EQ(frames[0].stream_id, 7u);
  EXPECT_EQ(first.status().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(frames[1].stream_id, 9u);
  EXPECT_EQ(second.status().code(), 0);
  EXPECT_EQ(second.payload(), "still here");
}

TEST_F(TtrpcServerTest, UnknownFrameTypesAreIgnored) {
  std::string bytes = *EncodeFrame(1, static_cast<MessageType>(9), 0, "whatever") +
                      *EncodeFrame(1, MessageType::kData, kFlagNoData, "") +
                      RequestFrame(3, "Echo", "ok");
  uint32_t id = 0;
  auto resp = RawExchange(bytes, &id);
  EXPECT_EQ(id, 3u);
  EXPECT_EQ(resp.payload(), "ok");
}

TEST_F(TtrpcServerTest, AnswerTooLargeForAFrameBecomesResourceExhausted) {
  auto client = Connect();
  EXPECT_EQ(client->Call("echo.v1.Echo", "Big", "").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(TtrpcServerTest, OpenCallsEndUnavailableWhenTheServerGoesAway) {
  auto client = Connect();
  auto blocked =
      std::async(std::launch::async, [&] { return client->Call("echo.v1.Echo", "Block", ""); });
  // Shutdown closes the connection under the open call.
  while (server_.active_requests() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_.Shutdown();
  EXPECT_EQ(blocked.get().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->Call("echo.v1.Echo", "Echo", "x").status().code(),
            absl::StatusCode::kUnavailable);
}

// rauha's extensions for rauhad's RunSandbox over ttrpc (rauhad/server/shim_endpoint.h): the
// server names the task ahead of its answer (send_metadata, a data frame the client hands to
// its caller, also when the connection then closes without an answer), and an answer may be
// larger than 4 MiB where both ends agree.
TEST(TtrpcExtensionsTest, MetadataAheadOfTheAnswerAndALargerAnswerLimit) {
  char tmpl[] = "/tmp/rauha-ttrpc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, path = dir + "/s.sock";
  constexpr uint32_t kLarger = 8u << 20;
  std::promise<void> release, announced;
  std::shared_future<void> released = release.get_future().share();
  auto server = std::make_unique<Server>();
  server->SetMaxResponsePayload(kLarger);
  server->Register("t.v1.T", "Announce", [](const CallContext& ctx, const std::string&) {
    ctx.send_metadata("rauha-task-id", "t-1");
    ctx.send_metadata("other", "v");
    return absl::StatusOr<std::string>("answer");
  });
  server->Register("t.v1.T", "AnnounceThenBlock",
                   [released, &announced](const CallContext& ctx,
                                          const std::string&) -> absl::StatusOr<std::string> {
                     ctx.send_metadata("rauha-task-id", "t-2");
                     announced.set_value();
                     released.wait();
                     return std::string("late");
                   });
  server->Register("t.v1.T", "Large", [](const CallContext&, const std::string&) {
    return absl::StatusOr<std::string>(std::string(kMaxPayload + 100, 'L'));
  });
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status();
  server->Serve(std::move(*listener));

  auto client = Client::Connect(path, kLarger);
  ASSERT_TRUE(client.ok()) << client.status();
  InitialMetadata md;
  auto r = (*client)->Call("t.v1.T", "Announce", "", absl::InfiniteDuration(), {}, nullptr, &md);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "answer");
  EXPECT_EQ(md, (InitialMetadata{{"rauha-task-id", "t-1"}, {"other", "v"}}));

  auto large = (*client)->Call("t.v1.T", "Large", "");
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(large->size(), kMaxPayload + 100);
  // A client that did not agree to more reads no more than ttrpc's 4 MiB.
  auto small = Client::Connect(path);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)->Call("t.v1.T", "Large", "").status().code(),
            absl::StatusCode::kResourceExhausted);

  // The server goes away after naming the task: the caller gets Unavailable and the name.
  InitialMetadata cut;
  auto blocked = std::async(std::launch::async, [&] {
    return (*client)->Call("t.v1.T", "AnnounceThenBlock", "", absl::InfiniteDuration(), {}, nullptr,
                           &cut);
  });
  // Shut down once the handler has sent its metadata (the frame is in the socket ahead of the
  // close, so the client reads it first).
  announced.get_future().wait();
  server->Shutdown();
  auto ended = blocked.get();
  EXPECT_EQ(ended.status().code(), absl::StatusCode::kUnavailable) << ended.status();
  release.set_value();
  for (int i = 0; i < 1000 && server->active_requests() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(cut, (InitialMetadata{{"rauha-task-id", "t-2"}}));
  server.reset();
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

// CallOnConnection, the CLI's one call without a reader thread: the answer, what was sent
// ahead of it, a larger answer where agreed; a shutdown(2) from another thread ends it, and the
// server's handler sees its connection closed (that is how the CLI cancels).
TEST(TtrpcExtensionsTest, OneCallOnAConnectionAndItsCancel) {
  char tmpl[] = "/tmp/rauha-ttrpc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, path = dir + "/s.sock";
  constexpr uint32_t kLarger = 8u << 20;
  std::atomic<bool> running{false}, saw_close{false};
  Server server;
  server.SetMaxResponsePayload(kLarger);
  server.Register("t.v1.T", "Announce", [](const CallContext& ctx, const std::string& p) {
    ctx.send_metadata("rauha-task-id", "t-1");
    return absl::StatusOr<std::string>("answer to " + p);
  });
  server.Register("t.v1.T", "Large", [](const CallContext&, const std::string&) {
    return absl::StatusOr<std::string>(std::string(kMaxPayload + 100, 'L'));
  });
  server.Register("t.v1.T", "Fail", [](const CallContext&, const std::string&) {
    return absl::StatusOr<std::string>(absl::NotFoundError("no task"));
  });
  server.Register("t.v1.T", "UntilClosed",
                  [&](const CallContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
                    running = true;
                    for (int i = 0; i < 3000 && !ctx.cancelled(); ++i) {
                      std::this_thread::sleep_for(std::chrono::milliseconds(10));
                    }
                    saw_close = ctx.cancelled();
                    return std::string("late");
                  });
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status();
  server.Serve(std::move(*listener));

  auto fd = ConnectUnix(path);
  ASSERT_TRUE(fd.ok());
  InitialMetadata md;
  auto r = CallOnConnection(fd->get(), "t.v1.T", "Announce", "q", kMaxPayload, &md);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "answer to q");
  EXPECT_EQ(md, (InitialMetadata{{"rauha-task-id", "t-1"}}));
  fd = ConnectUnix(path);
  EXPECT_EQ(CallOnConnection(fd->get(), "t.v1.T", "Large", "", kLarger)->size(), kMaxPayload + 100);
  fd = ConnectUnix(path);
  EXPECT_EQ(CallOnConnection(fd->get(), "t.v1.T", "Large", "").status().code(),
            absl::StatusCode::kResourceExhausted);
  fd = ConnectUnix(path);
  auto failed = CallOnConnection(fd->get(), "t.v1.T", "Fail", "");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(failed.status().message(), "no task");
  fd = ConnectUnix(path);
  EXPECT_EQ(CallOnConnection(fd->get(), "t.v1.T", "Nope", "").status().code(),
            absl::StatusCode::kUnimplemented);

  fd = ConnectUnix(path);
  const int sock = fd->get();
  std::thread canceller([&] {
    for (int i = 0; i < 3000 && !running; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::shutdown(sock, SHUT_RDWR);
  });
  auto cancelled = CallOnConnection(sock, "t.v1.T", "UntilClosed", "");
  canceller.join();
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kUnavailable) << cancelled.status();
  for (int i = 0; i < 3000 && server.active_requests() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(saw_close) << "the handler saw its connection close";
  server.Shutdown();
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace rauha::ttrpc
