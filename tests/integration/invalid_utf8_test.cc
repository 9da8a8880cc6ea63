// A request whose string field is not UTF-8, sent as raw bytes (a client is free to send any):
// INVALID_ARGUMENT naming the field, for unary and streaming methods of every kind of handler
// (sync, callback), nothing created, and nothing in rauhad's log per request.
#include <grpcpp/generic/generic_stub.h>

#include <filesystem>
#include <future>
#include <thread>

#include "rauha/v1/image.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace zpb = rauha::zone::v1;
namespace spb = rauha::sandbox::v1;
namespace ipb = rauha::image::v1;

constexpr std::string_view kNotUtf8 = "caf\xe9\xff\xfe";  // Latin-1 "é", then bytes never valid

void Varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// One length-delimited field (wire type 2) of the protobuf encoding.
std::string Field(int number, std::string_view bytes) {
  std::string out;
  Varint(out, (static_cast<uint64_t>(number) << 3) | 2);
  Varint(out, bytes.size());
  out.append(bytes);
  return out;
}

// A unary call with `body` as the request's bytes, as a client of any language could send.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& body) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

size_t CountOf(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

using InvalidUtf8Test = DaemonTest;

TEST_F(InvalidUtf8Test, UnaryRequestsNameTheFieldAndChangeNothing) {
  auto channel = daemon_->Channel();
  struct Case {
    std::string method;
    std::string body;
    std::string field;  // as the message names it
  };
  const std::vector<Case> cases = {
      {"/rauha.zone.v1.ZoneService/CreateZone",
       Field(zpb::CreateZoneRequest::kNameFieldNumber, kNotUtf8), "request field name:"},
      {"/rauha.zone.v1.ZoneService/CreateZone",
       Field(zpb::CreateZoneRequest::kNameFieldNumber, "ok") +
           Field(zpb::CreateZoneRequest::kPolicyTomlFieldNumber, kNotUtf8),
       "request field policy_toml:"},
      {"/rauha.sandbox.v1.SandboxService/RunSandbox",
       Field(spb::RunSandboxRequest::kCommandFieldNumber, "echo") +
           Field(spb::RunSandboxRequest::kCommandFieldNumber, kNotUtf8),
       "request field command:"},
      {"/rauha.sandbox.v1.SandboxService/RunSandbox",
       Field(spb::RunSandboxRequest::kCommandFieldNumber, "true") +
           Field(spb::RunSandboxRequest::kEnvFieldNumber, Field(1, "KEY") + Field(2, kNotUtf8)),
       "request field env (a value):"},
      {"/rauha.sandbox.v1.SandboxService/WaitTask",
       Field(spb::WaitTaskRequest::kTaskIdFieldNumber, kNotUtf8), "request field task_id:"},
      {"/rauha.zone.v1.ZoneService/DeleteZone",
       Field(zpb::DeleteZoneRequest::kNameFieldNumber, kNotUtf8), "request field name:"},
  };
  // rauhad's start-up lines end with "listening on" (printed once it serves): the baseline.
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       daemon_->log().find("listening on") == std::string::npos &&
       std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const size_t lines_before = CountOf(daemon_->log(), "\n");
  for (int round = 0; round < 20; ++round) {
    for (const auto& c : cases) {
      grpc::Status s = RawUnary(channel, c.method, c.body);
      ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << c.method << ": " << s.error_code() << " " << s.error_message();
      EXPECT_NE(s.error_message().find(c.field), std::string::npos) << s.error_message();
      EXPECT_NE(s.error_message().find("not valid UTF-8"), std::string::npos) << s.error_message();
    }
  }
  // 120 refused requests and not a line of log for them.
  const std::string log = daemon_->log();
  EXPECT_EQ(CountOf(log, "\n"), lines_before) << log;
  EXPECT_EQ(log.find("UTF-8"), std::string::npos) << log;

  // Nothing was created, and rauhad still serves.
  zpb::ListZonesResponse zones;
  grpc::ClientContext list_ctx;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&list_ctx, {}, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0);
  spb::ListTasksResponse tasks;
  grpc::ClientContext tasks_ctx;
  ASSERT_TRUE(daemon_->Sandbox()->ListTasks(&tasks_ctx, {}, &tasks).ok());
  EXPECT_EQ(tasks.tasks_size(), 0);
  for (const auto& parent : daemon_->LeftoverCgroups()) {
    std::error_code ec;
    for (const auto& child : std::filesystem::directory_iterator(parent, ec)) {
      EXPECT_FALSE(child.is_directory()) << "a zone cgroup was made: " << child.path();
    }
  }
  // The same request with valid text still works.
  ASSERT_TRUE(CreateZone("café").ok());
}

TEST_F(InvalidUtf8Test, StreamingRequestsNameTheField) {
  // WatchEvents is a callback-API server stream: its one request parses before the reactor.
  // protobuf serializes invalid UTF-8 with only a log line, so typed stubs send it as is.
  {
    zpb::WatchEventsRequest req;
    req.set_zone_name(std::string(kNotUtf8));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto reader = daemon_->Zones()->WatchEvents(&ctx, req);
    zpb::ZoneEvent ev;
    EXPECT_FALSE(reader->Read(&ev));
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("request field zone_name:"), std::string::npos)
        << s.error_message();
  }
  // Import is a sync client stream: the second message fails to parse mid-stream.
  {
    auto images = ipb::ImageService::NewStub(daemon_->Channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ipb::ImportResponse resp;
    auto writer = images->Import(&ctx, &resp);
    ipb::ImportChunk first;
    first.set_data(std::string(512, '\0'));
    writer->Write(first);
    ipb::ImportChunk bad;
    bad.set_tag(std::string(kNotUtf8));
    writer->Write(bad);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("request field tag:"), std::string::npos) << s.error_message();
    ipb::ListResponse list;
    grpc::ClientContext list_ctx;
    ASSERT_TRUE(images->List(&list_ctx, {}, &list).ok());
    EXPECT_EQ(list.images_size(), 0);
  }
  EXPECT_EQ(daemon_->log().find("UTF-8"), std::string::npos) << daemon_->log();
  zpb::GetVersionRequest vreq;
  zpb::VersionInfo version;
  grpc::ClientContext vctx;
  EXPECT_TRUE(daemon_->Zones()->GetVersion(&vctx, vreq, &version).ok());
}

}  // namespace
}  // namespace rauha::testing
