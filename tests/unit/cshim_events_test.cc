// EventPublisher against a ttrpc server standing in for containerd's Events service (the real
// one is exercised by tests/containerd): one Forward per event, in publish order, with the
// namespace, the topic and the Any's bare type name containerd's typeurl registry expects.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "containerd-shim-rauha-v2/events.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "google/protobuf/empty.pb.h"

namespace rauha::cshim {
namespace {

namespace ev = containerd::services::events::ttrpc::v1;

TEST(CshimEvents, ForwardedInOrderWithNamespaceTopicAndBareTypeName) {
  char tmpl[] = "/tmp/rauha-events-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/ttrpc.sock";
  std::mutex mu;
  std::vector<ev::Envelope> got;
  ttrpc::Server server;
  server.RegisterMethod<ev::ForwardRequest, google::protobuf::Empty>(
      "containerd.services.events.ttrpc.v1.Events", "Forward",
      [&](const ttrpc::CallContext&, const ev::ForwardRequest& req) {
        std::lock_guard lock(mu);
        got.push_back(req.envelope());
        return absl::StatusOr<google::protobuf::Empty>(google::protobuf::Empty());
      });
  auto listener = ttrpc::ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status();
  server.Serve(std::move(*listener));
  {
    EventPublisher publisher(path, "k8s.io");
    containerd::events::TaskCreate create;
    create.set_container_id("c1");
    publisher.Publish("/tasks/create", create);
    containerd::events::TaskStart start;
    start.set_container_id("c1");
    start.set_pid(42);
    publisher.Publish("/tasks/start", start);
    containerd::events::TaskExit exit;
    exit.set_container_id("c1");
    exit.set_exit_status(137);
    publisher.Publish("/tasks/exit", exit);
    containerd::events::TaskDelete del;
    del.set_container_id("c1");
    publisher.Publish("/tasks/delete", del);
    publisher.Flush();
  }
  server.Shutdown();
  ::unlink(path.c_str());
  ::rmdir(tmpl);
  std::lock_guard lock(mu);
  ASSERT_EQ(got.size(), 4u);
  const char* topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"};
  const char* types[] = {"containerd.events.TaskCreate", "containerd.events.TaskStart",
                         "containerd.events.TaskExit", "containerd.events.TaskDelete"};
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(got[i].topic(), topics[i]);
    EXPECT_EQ(got[i].namespace_(), "k8s.io");
    EXPECT_EQ(got[i].event().type_url(), types[i]);
    EXPECT_GT(got[i].timestamp().seconds(), 0);
  }
  containerd::events::TaskExit exit;
  ASSERT_TRUE(exit.ParseFromString(got[2].event().value()));
  EXPECT_EQ(exit.exit_status(), 137u);
}

}  // namespace
}  // namespace rauha::cshim
