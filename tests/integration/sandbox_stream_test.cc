// RunSandboxStream against a real rauhad: output that arrives while the task runs, all of it
// past the output limit, stdin, signals, enforcement events, and the refusals before a start.
// No test waits on a clock: a task that must still run when the test looks waits for a file
// the test creates once it has seen what it was waiting for.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
using Stream =
    grpc::ClientReaderWriter<spb::RunSandboxStreamRequest, spb::RunSandboxStreamResponse>;

// A host directory mounted at /workspace, removed with the test.
class Workspace {
 public:
  Workspace() {
    char tmpl[] = "/tmp/rauha-stream-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
  ~Workspace() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& dir() const { return dir_; }
  // The file a task waits for (`while [ ! -e /workspace/NAME ]`).
  void Touch(const std::string& name) const { std::ofstream(dir_ + "/" + name) << "x"; }

 private:
  std::string dir_;
};

// A shell loop that waits for /workspace/NAME (polling: the task's own business, not a test
// clock).
std::string WaitFor(const std::string& name) {
  return "while [ ! -e /workspace/" + name + " ]; do sleep 0.02; done";
}

// What a stream delivered, in order.
struct Seen {
  bool started_first = false;
  std::string task_id;
  std::string out;
  std::string err;
  std::vector<spb::EnforcementEventSummary> events;
  std::optional<spb::SandboxResult> result;
  bool anything_after_result = false;
};

class SandboxStreamTest : public DaemonTest {
 protected:
  // Opens a stream (deadline 120 s: a hang fails the test instead of blocking it) and sends
  // `start`.
  std::unique_ptr<Stream> Open(const spb::SandboxStreamStart& start) {
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto stream = daemon_->Sandbox()->RunSandboxStream(ctx_.get());
    spb::RunSandboxStreamRequest first;
    *first.mutable_start() = start;
    EXPECT_TRUE(stream->Write(first));
    return stream;
  }

  // Reads until `until` holds for what was seen (true) or the stream ends (false).
  bool ReadUntil(Stream* stream, Seen& seen, const std::function<bool(const Seen&)>& until) {
    spb::RunSandboxStreamResponse msg;
    bool first = seen.task_id.empty() && seen.out.empty() && seen.err.empty();
    while (!until(seen)) {
      if (!stream->Read(&msg)) return false;
      if (seen.result) seen.anything_after_result = true;
      switch (msg.message_case()) {
        case spb::RunSandboxStreamResponse::kStarted:
          if (first) seen.started_first = true;
          seen.task_id = msg.started().task_id();
          break;
        case spb::RunSandboxStreamResponse::kStdoutData:
          seen.out += msg.stdout_data();
          break;
        case spb::RunSandboxStreamResponse::kStderrData:
          seen.err += msg.stderr_data();
          break;
        case spb::RunSandboxStreamResponse::kEnforcementEvent:
          seen.events.push_back(msg.enforcement_event());
          break;
        case spb::RunSandboxStreamResponse::kResult:
          seen.result = msg.result();
          break;
        default:
          break;
      }
      first = false;
    }
    return true;
  }

  // Reads to the result, closes the sending side (as a client done with the task does), reads
  // to the end of the stream; the call's status.
  grpc::Status ReadAll(Stream* stream, Seen& seen) {
    ReadUntil(stream, seen, [](const Seen& s) { return s.result.has_value(); });
    stream->WritesDone();
    ReadUntil(stream, seen, [](const Seen&) { return false; });
    return stream->Finish();
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
};

spb::SandboxStreamStart StartOf(const std::vector<std::string>& command,
                                const std::string& repo = "") {
  spb::SandboxStreamStart start;
  for (const auto& c : command) start.mutable_request()->add_command(c);
  start.mutable_request()->set_repo_path(repo);
  start.mutable_request()->set_timeout_seconds(100);
  return start;
}

TEST_F(SandboxStreamTest, OutputArrivesWhileTheTaskRuns) {
  Workspace ws;
  ASSERT_FALSE(ws.dir().empty());
  // The task cannot end before the test has seen its first lines: it waits for a file the
  // test creates only then.
  auto stream = Open(StartOf(
      {"/bin/sh", "-c", "echo ready; echo warming >&2; " + WaitFor("go") + "; echo done; exit 4"},
      ws.dir()));
  Seen seen;
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [](const Seen& s) {
    return s.out.find("ready\n") != std::string::npos &&
           s.err.find("warming\n") != std::string::npos;
  })) << "the stream ended before the task's first output came";
  EXPECT_FALSE(seen.result.has_value());
  EXPECT_TRUE(seen.started_first);
  EXPECT_FALSE(seen.task_id.empty());
  ws.Touch("go");
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_FALSE(seen.anything_after_result);
  EXPECT_EQ(seen.out, "ready\ndone\n");
  EXPECT_EQ(seen.err, "warming\n");
  EXPECT_EQ(seen.result->task_id(), seen.task_id);
  EXPECT_EQ(seen.result->status(), "failed");
  EXPECT_EQ(seen.result->exit_code(), 4);
  EXPECT_EQ(seen.result->stdout(), "ready\ndone\n");
  EXPECT_EQ(seen.result->stderr(), "warming\n");
}

// Several MiB, well past the output limit and past the shim's live backlog (1 MiB): every byte
// is on the stream (the shim paces the task instead of dropping), the result keeps the head.
TEST_F(SandboxStreamTest, OutputBeyondTheLimitIsCompleteOnTheStream) {
  auto start = StartOf({"/bin/sh", "-c", "seq 1 400000; seq 1 100000 >&2"});
  start.mutable_request()->set_output_limit_bytes(4096);
  auto stream = Open(start);
  Seen seen;
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  std::string want_out, want_err;
  for (int i = 1; i <= 400000; ++i) want_out += std::to_string(i) + "\n";
  for (int i = 1; i <= 100000; ++i) want_err += std::to_string(i) + "\n";
  EXPECT_EQ(seen.out.size(), want_out.size());
  EXPECT_TRUE(seen.out == want_out) << "stdout on the stream differs from seq's output";
  EXPECT_TRUE(seen.err == want_err) << "stderr on the stream differs from seq's output";
  EXPECT_EQ(seen.result->status(), "succeeded");
  EXPECT_EQ(seen.result->stdout(), want_out.substr(0, 4096));
  EXPECT_TRUE(seen.result->stdout_truncated());
  EXPECT_EQ(seen.result->stderr(), want_err.substr(0, 4096));
  EXPECT_TRUE(seen.result->stderr_truncated());
}

TEST_F(SandboxStreamTest, StdinStreamsToTheTask) {
  auto start = StartOf({"/bin/cat"});
  start.set_stdin(true);
  auto stream = Open(start);
  Seen seen;
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [](const Seen& s) { return !s.task_id.empty(); }));
  spb::RunSandboxStreamRequest in;
  in.set_stdin_data("hello\n");
  ASSERT_TRUE(stream->Write(in));
  // cat echoes before its input ends: the input is live, not read to EOF first.
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [](const Seen& s) { return s.out == "hello\n"; }));
  in.set_stdin_data("world\n");
  ASSERT_TRUE(stream->Write(in));
  spb::RunSandboxStreamRequest close;
  close.set_stdin_close(true);
  ASSERT_TRUE(stream->Write(close));
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_EQ(seen.out, "hello\nworld\n");
  EXPECT_EQ(seen.result->status(), "succeeded");
  EXPECT_EQ(seen.result->stdout(), "hello\nworld\n");
}

// More input than the shim holds for a task at once (1 MiB), in pieces; the client closing
// its side is the end of input.
TEST_F(SandboxStreamTest, LargeStdinIsCountedWhole) {
  auto start = StartOf({"/usr/bin/wc", "-c"});
  start.set_stdin(true);
  auto stream = Open(start);
  const std::string piece(300000, 'x');
  for (int i = 0; i < 10; ++i) {
    spb::RunSandboxStreamRequest in;
    in.set_stdin_data(piece);
    ASSERT_TRUE(stream->Write(in));
  }
  stream->WritesDone();
  Seen seen;
  ReadUntil(stream.get(), seen, [](const Seen&) { return false; });
  grpc::Status st = stream->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_EQ(seen.out, "3000000\n");
  EXPECT_EQ(seen.result->exit_code(), 0);
}

TEST_F(SandboxStreamTest, SignalMessageReachesTheTask) {
  auto stream = Open(StartOf({"/bin/sleep", "1000"}));
  Seen seen;
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [](const Seen& s) { return !s.task_id.empty(); }));
  spb::RunSandboxStreamRequest sig;
  sig.set_signal(SIGTERM);
  ASSERT_TRUE(stream->Write(sig));
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_EQ(seen.result->status(), "failed");
  EXPECT_FALSE(seen.result->has_exit_code());
  EXPECT_EQ(seen.result->signal(), SIGTERM);
}

// A seccomp denial comes on the stream while the task runs (it waits until the test saw it);
// every enforcement event of the result was on the stream before the result.
TEST_F(SandboxStreamTest, EnforcementEventsComeOnTheStream) {
  Workspace ws;
  ASSERT_FALSE(ws.dir().empty());
  auto stream = Open(
      StartOf({"/bin/sh", "-c", "unshare -U true; " + WaitFor("go") + "; echo after"}, ws.dir()));
  Seen seen;
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [](const Seen& s) {
    for (const auto& e : s.events) {
      if (e.hook() == "seccomp") return true;
    }
    return false;
  })) << "no seccomp event came while the task ran";
  EXPECT_FALSE(seen.result.has_value());
  spb::EnforcementEventSummary live;
  for (const auto& e : seen.events) {
    if (e.hook() == "seccomp") live = e;
  }
  EXPECT_EQ(live.object(), "unshare");
  EXPECT_EQ(live.decision(), "deny");
  EXPECT_EQ(live.layer(), "seccomp");
  ws.Touch("go");
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_EQ(seen.out, "after\n");
  std::multiset<std::string> on_stream, in_result;
  for (const auto& e : seen.events) on_stream.insert(e.SerializeAsString());
  for (const auto& e : seen.result->enforcement_events()) in_result.insert(e.SerializeAsString());
  EXPECT_GE(in_result.size(), 1u);
  EXPECT_EQ(on_stream, in_result) << "each event of the result comes once on the stream";
}

// The kernel's denials (here cgroup/connect4, read from the BPF ring buffer by rauhad) come on
// the stream while the task runs too, not only with the result: the task waits until the test
// saw the event. Every event of the result comes once on the stream.
TEST_F(SandboxStreamTest, KernelEnforcementEventsComeWhileTheTaskRuns) {
  Workspace ws;
  ASSERT_FALSE(ws.dir().empty());
  // bash's /dev/tcp connect to TEST-NET-1 from an isolated zone: cgroup/connect4 refuses it.
  auto stream = Open(
      StartOf({"/bin/bash", "-c",
               "exec 3<>/dev/tcp/192.0.2.1/9 || echo refused; " + WaitFor("go") + "; echo after"},
              ws.dir()));
  auto is_connect = [](const spb::EnforcementEventSummary& e) {
    return e.hook() == "cgroup/connect4" && e.decision() == "deny" &&
           e.object() == "192.0.2.1:9/tcp";
  };
  Seen seen;
  ASSERT_TRUE(ReadUntil(stream.get(), seen, [&](const Seen& s) {
    for (const auto& e : s.events) {
      if (is_connect(e)) return true;
    }
    return false;
  })) << "no cgroup/connect4 event came while the task ran (it waits for /workspace/go)";
  EXPECT_FALSE(seen.result.has_value());
  ws.Touch("go");
  grpc::Status st = ReadAll(stream.get(), seen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(seen.result.has_value());
  EXPECT_EQ(seen.out, "refused\nafter\n");
  std::multiset<std::string> on_stream, in_result;
  for (const auto& e : seen.events) on_stream.insert(e.SerializeAsString());
  bool in_result_too = false;
  for (const auto& e : seen.result->enforcement_events()) {
    in_result.insert(e.SerializeAsString());
    in_result_too = in_result_too || is_connect(e);
  }
  EXPECT_TRUE(in_result_too) << "the result lacks the connect4 denial";
  EXPECT_EQ(on_stream, in_result) << "each event of the result comes once on the stream";
}

TEST_F(SandboxStreamTest, RefusalsBeforeTheStartChangeNothing) {
  {
    // A first message that is not start.
    grpc::ClientContext ctx;
    auto stream = daemon_->Sandbox()->RunSandboxStream(&ctx);
    spb::RunSandboxStreamRequest in;
    in.set_stdin_data("x");
    ASSERT_TRUE(stream->Write(in));
    stream->WritesDone();
    spb::RunSandboxStreamResponse msg;
    EXPECT_FALSE(stream->Read(&msg));
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("first message"), std::string::npos);
  }
  {
    // stdin both in the request and live; the stream stays open on the client's side (an
    // interactive client does not close it), and the error still comes at once.
    auto start = StartOf({"/bin/cat"});
    start.set_stdin(true);
    start.mutable_request()->set_stdin_data("x");
    auto stream = Open(start);
    Seen seen;
    ReadUntil(stream.get(), seen, [](const Seen&) { return false; });
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_TRUE(seen.task_id.empty());
  }
  {
    // An empty command: refused by the same checks as RunSandbox.
    auto stream = Open(StartOf({}));
    Seen seen;
    ReadUntil(stream.get(), seen, [](const Seen&) { return false; });
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }
  rauha::zone::v1::ListZonesResponse zones;
  grpc::ClientContext ctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, {}, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0);
}

}  // namespace
}  // namespace rauha::testing
