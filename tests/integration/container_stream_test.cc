// Streaming exec and attach under a client that reads slowly: the process is held back (its
// writes block, as into a pipe) and every byte arrives, in order; nothing is dropped.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

// `seq 1 1200000`: 8 488 904 bytes, more than 8 MiB, each line different (an order check).
constexpr int kLines = 1200000;

std::string Seq(int n) {
  std::string s;
  s.reserve(8u << 20);
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

// Where the two differ first, for a failure message that says more than "not equal".
std::string FirstDifference(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         "; first difference at byte " + std::to_string(i) + ": got \"" + got.substr(i, 20) +
         "\", want \"" + want.substr(i, 20) + "\"";
}

// A client whose receive window stays at HTTP/2's 64 KiB (no BDP probing to grow it): rauhad
// feels its slowness at once instead of after megabytes buffered in the client's transport.
std::unique_ptr<cpb::ContainerService::Stub> SlowClient(const std::string& socket) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  return cpb::ContainerService::NewStub(
      grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args));
}

// The slow reader: nothing for `stall` after the first message (long enough for an unpaced
// process to have written all of it), then a pause every message.
void ReadSlowly(int* messages, std::chrono::milliseconds stall = 1500ms) {
  if (*messages == 1) std::this_thread::sleep_for(stall);
  if (*messages % 4 == 0) std::this_thread::sleep_for(5ms);
  ++*messages;
}

TEST_F(ContainerTest, SlowExecStreamGetsEveryByteInOrder) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &id).ok());
  ASSERT_TRUE(Start(id).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 180s);
  auto client = SlowClient(daemon_->socket());
  auto stream = client->ExecStream(&ctx);
  cpb::ExecStreamRequest start;
  start.mutable_start()->set_container_id(id);
  for (const char* w : {"/bin/busybox", "seq", "1", "1200000"}) {
    start.mutable_start()->add_command(w);
  }
  ASSERT_TRUE(stream->Write(start));
  stream->WritesDone();
  std::string out;
  std::optional<int> code;
  int messages = 0;
  cpb::ExecStreamResponse r;
  while (stream->Read(&r)) {
    if (r.has_exit_code()) code = r.exit_code();
    out += r.stdout_data();
    ReadSlowly(&messages);
  }
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(code, 0);
  const std::string want = Seq(kLines);
  EXPECT_TRUE(out == want) << FirstDifference(out, want);
  ASSERT_TRUE(Delete(id, true).ok());
  ExpectGone(id);
}

TEST_F(ContainerTest, SlowAttachGetsEveryByteInOrder) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "seq", "1", "1200000"}, &id).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 180s);
  auto client = SlowClient(daemon_->socket());
  auto stream = client->Attach(&ctx);
  cpb::AttachRequest start;
  start.mutable_start()->set_container_id(id);
  ASSERT_TRUE(stream->Write(start));
  cpb::AttachResponse r;
  ASSERT_TRUE(stream->Read(&r));  // the attach is in place: nothing of the output is missed
  ASSERT_TRUE(Start(id).ok());
  std::string out;
  std::optional<int> code;
  int messages = 1;
  while (stream->Read(&r)) {
    if (r.has_exit_code()) {
      code = r.exit_code();
      break;
    }
    out += r.stdout_data();
    ReadSlowly(&messages);
  }
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(code, 0);
  const std::string want = Seq(kLines);
  EXPECT_TRUE(out == want) << FirstDifference(out, want);
  WaitForState(id, "Stopped");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

// A container that outlived rauhad is watched again by the next one, paced all the same: its
// output (60 MiB) starts only once the new rauhad watches it and a slow client is attached
// (which stalls 6 s: an unpaced watch lost output from 5 MiB on).
TEST_F(ContainerTest, SlowAttachAfterARauhadRestartGetsEveryByteInOrder) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c",
                      "while ! /bin/busybox test -e /tmp/go; do /bin/busybox sleep 0.05; done; "
                      "exec /bin/busybox seq 1 8000000"},
                     &id)
                  .ok());
  ASSERT_TRUE(Start(id).ok());
  WaitForState(id, "Running");
  daemon_->Kill9();
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  ASSERT_EQ(WaitForState(id, "Running").state(), "Running");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 180s);
  auto client = SlowClient(daemon_->socket());
  auto stream = client->Attach(&ctx);
  cpb::AttachRequest start;
  start.mutable_start()->set_container_id(id);
  ASSERT_TRUE(stream->Write(start));
  cpb::AttachResponse r;
  ASSERT_TRUE(stream->Read(&r));  // attached: now let it write
  cpb::ExecInContainerResponse go;
  ASSERT_TRUE(Exec(id, {"/bin/busybox", "touch", "/tmp/go"}, &go).ok());
  ASSERT_EQ(go.exit_code(), 0) << go.stderr();
  std::string out;
  std::optional<int> code;
  int messages = 1;
  while (stream->Read(&r)) {
    if (r.has_exit_code()) {
      code = r.exit_code();
      break;
    }
    out += r.stdout_data();
    ReadSlowly(&messages, 6000ms);
  }
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(code, 0);
  const std::string want = Seq(8000000);
  EXPECT_TRUE(out == want) << FirstDifference(out, want);
  WaitForState(id, "Stopped");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

}  // namespace
}  // namespace rauha::testing
