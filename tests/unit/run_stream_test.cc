// RunContainer's stream over ttrpc (rauhad/server/container_ttrpc.h, rauha-cli/run_call.h):
// the server's data frames ahead of its answer (CallContext::send_data), the client's
// StreamingCallOnConnection over hand-written frames (good, foreign, oversized, broken), and
// RunStream's checks of what the messages say. A bad frame or message ends the call with a
// clear error and hands nothing more on.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/frame.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/ttrpc/status.h"
#include "rauha-cli/run_call.h"
#include "rauha/v1/container.pb.h"
#include "ttrpc.pb.h"

namespace rauha {
namespace {

namespace cpb = rauha::container::v1;
using ttrpc::MessageType;

std::string Frame(uint32_t stream, MessageType type, const std::string& payload,
                  uint32_t max = ttrpc::kMaxPayload) {
  auto f = ttrpc::EncodeFrame(stream, type, 0, payload, max);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : "";
}

std::string Answer(const absl::Status& status) {
  ::ttrpc::Response r;
  *r.mutable_status() = ttrpc::ToProto(status);
  return Frame(1, MessageType::kResponse, r.SerializeAsString());
}

std::string Message(const cpb::RunContainerResponse& m) { return m.SerializeAsString(); }
cpb::RunContainerResponse Id(const std::string& id) {
  cpb::RunContainerResponse m;
  m.set_container_id(id);
  return m;
}
cpb::RunContainerResponse Out(const std::string& data, bool is_stderr = false) {
  cpb::RunContainerResponse m;
  if (is_stderr) {
    m.set_stderr_data(data);
  } else {
    m.set_stdout_data(data);
  }
  return m;
}
cpb::RunContainerResponse Exit(int code) {
  cpb::RunContainerResponse m;
  m.set_exit_code(code);
  return m;
}

struct Seen {
  std::string id, out, err;
  int ids = 0;
};

// A peer that reads the request and then writes `bytes` (hand-made frames) and closes; the
// client runs StreamingCallOnConnection through a RunStream.
struct Exchange {
  absl::Status status;
  Seen seen;
  std::optional<int> exit_code;
  std::string request_service, request_method;
};

Exchange Exchanged(const std::string& bytes) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd client(sv[0]), server(sv[1]);
  Exchange ex;
  std::thread peer([&] {
    ttrpc::FrameDecoder decoder;
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(server.get(), buf, sizeof(buf), 0);
      if (n <= 0) return;
      decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
      if (auto f = decoder.Next()) {
        ::ttrpc::Request req;
        EXPECT_TRUE(req.ParseFromString(f->payload));
        ex.request_service = req.service();
        ex.request_method = req.method();
        break;
      }
    }
    (void)ttrpc::WriteAll(server.get(), bytes);
    ::shutdown(server.get(), SHUT_RDWR);
  });
  cli::RunStream stream(cli::RunSink{[&](const std::string& id) {
                                       ex.seen.id = id;
                                       ex.seen.ids++;
                                     },
                                     [&](bool is_stderr, const std::string& data) {
                                       (is_stderr ? ex.seen.err : ex.seen.out) += data;
                                     }});
  ex.status = ttrpc::StreamingCallOnConnection(
      client.get(), "rauha.container.v1.ContainerService", "RunContainer", "",
      [&](std::string_view payload) { return stream.TakeFrame(payload); });
  peer.join();
  ex.exit_code = stream.exit_code();
  return ex;
}

TEST(RunStreamTest, DataFramesAheadOfTheAnswerAreTheStreamInOrder) {
  std::string bytes = Frame(1, MessageType::kData, Message(Id("c1"))) +
                      Frame(1, MessageType::kData, Message(Out("hello "))) +
                      // Frames of other streams and of unknown types are not this call's.
                      Frame(3, MessageType::kData, "not ours") +
                      Frame(1, static_cast<MessageType>(9), "from a newer peer") +
                      Frame(1, MessageType::kData, Message(Out("oops\n", true))) +
                      // A kind this CLI does not know (field 99 of a newer rauhad): skipped.
                      Frame(1, MessageType::kData, std::string("\x9a\x06\x01z", 4)) +
                      Frame(1, MessageType::kData, Message(Out("world\n"))) +
                      Frame(1, MessageType::kData, Message(Exit(3))) + Answer(absl::OkStatus());
  Exchange ex = Exchanged(bytes);
  EXPECT_TRUE(ex.status.ok()) << ex.status;
  EXPECT_EQ(ex.request_service, "rauha.container.v1.ContainerService");
  EXPECT_EQ(ex.request_method, "RunContainer");
  EXPECT_EQ(ex.seen.id, "c1");
  EXPECT_EQ(ex.seen.ids, 1);
  EXPECT_EQ(ex.seen.out, "hello world\n");
  EXPECT_EQ(ex.seen.err, "oops\n");
  EXPECT_EQ(ex.exit_code, 3);
}

TEST(RunStreamTest, TheAnswersErrorIsTheCallsWithCodeAndMessage) {
  Exchange ex = Exchanged(Answer(absl::NotFoundError("image \"x\" is not pulled")));
  EXPECT_EQ(ex.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ex.status.message(), "image \"x\" is not pulled");
  EXPECT_EQ(ex.seen.ids, 0);
}

TEST(RunStreamTest, AnUndecodableDataFrameEndsTheCallAndHandsNothingOn) {
  Exchange ex =
      Exchanged(Frame(1, MessageType::kData, Message(Id("c1"))) +
                Frame(1, MessageType::kData, std::string("\xff\xff\xff\xff", 4)) +
                Frame(1, MessageType::kData, Message(Out("after"))) + Answer(absl::OkStatus()));
  EXPECT_EQ(ex.status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ex.status.message(),
            "cannot decode rauhad's answer (rauha.container.v1.RunContainerResponse)");
  EXPECT_EQ(ex.seen.out, "");
}

TEST(RunStreamTest, MessagesOutOfOrderAreABrokenStream) {
  struct Case {
    std::vector<cpb::RunContainerResponse> messages;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{Out("x")}, "rauhad's RunContainer stream is broken: output before the container's id"},
           {{Exit(0)},
            "rauhad's RunContainer stream is broken: the exit code before the container's id"},
           {{Id("a"), Id("b")}, "rauhad's RunContainer stream is broken: the container's id again"},
           {{Id("a"), Exit(1), Out("late")},
            "rauhad's RunContainer stream is broken: output after the exit code"},
           {{Id("")}, "rauhad's RunContainer stream is broken: an empty container id"},
       }) {
    std::string bytes;
    for (const auto& m : c.messages) bytes += Frame(1, MessageType::kData, Message(m));
    Exchange ex = Exchanged(bytes + Answer(absl::OkStatus()));
    EXPECT_EQ(ex.status.code(), absl::StatusCode::kInternal) << c.error;
    EXPECT_EQ(ex.status.message(), c.error);
    EXPECT_EQ(ex.seen.out, "") << c.error;
  }
}

TEST(RunStreamTest, AnOversizedOrBrokenFrameIsAClearError) {
  // A data frame over ttrpc's 4 MiB: skipped unbuffered, then the call ends.
  std::string header = Frame(1, MessageType::kData, "");
  const uint32_t big = ttrpc::kMaxPayload + 1;
  header[0] = static_cast<char>(big >> 24);
  header[1] = static_cast<char>(big >> 16);
  header[2] = static_cast<char>(big >> 8);
  header[3] = static_cast<char>(big);
  Exchange ex = Exchanged(Frame(1, MessageType::kData, Message(Id("c1"))) + header +
                          std::string(big, 'x') + Answer(absl::OkStatus()));
  EXPECT_EQ(ex.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ex.status.message(), "ttrpc data frame of 4194305 bytes exceeds the limit of 4194304");

  ex = Exchanged(Frame(1, MessageType::kResponse, std::string("\xff\xff", 2)));
  EXPECT_EQ(ex.status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ex.status.message(), "cannot decode a ttrpc Response");

  // Cut off: a header and half a payload, then the close.
  ex = Exchanged(Frame(1, MessageType::kData, Message(Out("abcdef"))).substr(0, 13));
  EXPECT_EQ(ex.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ex.status.message(), "ttrpc connection closed before an answer");
}

// The server's side: what a handler sends with send_data arrives ahead of its answer, in
// order; after the answer the stream is over and send_data says so.
TEST(RunStreamTest, ServerSendsDataFramesUntilItsAnswer) {
  char tmpl[] = "/tmp/rauha-runstream-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/s.sock";
  ttrpc::Server server;
  std::function<bool(std::string_view)> kept;
  std::mutex mu;
  server.Register(
      "rauha.container.v1.ContainerService", "RunContainer",
      [&](const ttrpc::CallContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
        EXPECT_TRUE(ctx.send_data(Message(Id("c9"))));
        EXPECT_TRUE(ctx.send_data(Message(Out("one\n"))));
        // Over a frame's limit: not sent, and the stream goes on.
        EXPECT_FALSE(ctx.send_data(std::string(ttrpc::kMaxPayload + 1, 'x')));
        EXPECT_TRUE(ctx.send_data(Message(Exit(0))));
        std::lock_guard lock(mu);
        kept = ctx.send_data;
        return std::string();
      });
  auto listener = ttrpc::ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status();
  server.Serve(std::move(*listener));
  auto fd = ttrpc::ConnectUnix(path);
  ASSERT_TRUE(fd.ok()) << fd.status();
  Seen seen;
  cli::RunStream stream(cli::RunSink{[&](const std::string& id) { seen.id = id; },
                                     [&](bool, const std::string& d) { seen.out += d; }});
  absl::Status status = ttrpc::StreamingCallOnConnection(
      fd->get(), "rauha.container.v1.ContainerService", "RunContainer", "",
      [&](std::string_view p) { return stream.TakeFrame(p); });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen.id, "c9");
  EXPECT_EQ(seen.out, "one\n");
  EXPECT_EQ(stream.exit_code(), 0);
  {
    std::lock_guard lock(mu);
    ASSERT_TRUE(kept);
    EXPECT_FALSE(kept(Message(Out("late"))));  // the answer has gone out
  }
  server.Shutdown();
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace rauha
