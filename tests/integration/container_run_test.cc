// `rauha run` as docker users know it, against a real rauhad: the foreground run follows the
// log from before the start and exits with the container's code (128 + N for a signal);
// --rm is done by rauhad at the container's exit (so it happens with -d, and when the client
// was killed); WaitContainer; `rauha logs` with --timestamps, --since and --until.
#include <map>
#include <regex>

#include "nlohmann/json.hpp"

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

class ContainerRunTest : public ContainerTest {
 protected:
  grpc::Status CreateAutoRemove(const std::vector<std::string>& command, std::string* id) {
    cpb::CreateContainerRequest req;
    req.set_image(image_);
    for (const auto& c : command) req.add_command(c);
    req.set_auto_remove(true);
    grpc::ClientContext ctx;
    cpb::CreateContainerResponse resp;
    grpc::Status s = containers_->CreateContainer(&ctx, req, &resp);
    if (s.ok()) *id = resp.container_id();
    return s;
  }
  grpc::Status Wait(const std::string& id, cpb::WaitContainerResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::WaitContainerRequest req;
    req.set_container_id(id);
    return containers_->WaitContainer(&ctx, req, resp);
  }
  std::vector<cpb::ContainerLogEntry> LogsBetween(const std::string& id, const std::string& since,
                                                  const std::string& until, grpc::Status* status) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::ContainerLogsRequest req;
    req.set_container_id(id);
    req.set_since(since);
    req.set_until(until);
    auto reader = containers_->ContainerLogs(&ctx, req);
    std::vector<cpb::ContainerLogEntry> out;
    cpb::ContainerLogEntry e;
    while (reader->Read(&e)) out.push_back(e);
    *status = reader->Finish();
    return out;
  }
};

TEST_F(ContainerRunTest, ForegroundRunPrintsEverythingAndExitsWithTheContainersCode) {
  std::string out, err;
  int rc = CliSplit(
      {"run", "--rm", image_, "/bin/busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 7"},
      &out, &err);
  EXPECT_EQ(rc, 7);
  EXPECT_EQ(out, "to-out\n");
  EXPECT_EQ(err, "to-err\n");
  // A signal death is 128 + N, as docker and a shell say it.
  rc = CliSplit({"run", "--rm", image_, "/bin/busybox", "sh", "-c", "kill -9 $$"}, &out, &err);
  EXPECT_EQ(rc, 128 + SIGKILL) << out << err;
  // A container that is done before a client could ask for its log, and removed at its exit:
  // its output is there every time (the follow is in place before the start).
  for (int i = 0; i < 5; ++i) {
    rc = CliSplit({"run", "--rm", image_, "/bin/busybox", "echo", "quick-" + std::to_string(i)},
                  &out, &err);
    EXPECT_EQ(rc, 0) << err;
    EXPECT_EQ(out, "quick-" + std::to_string(i) + "\n") << err;
  }
  // A command that cannot run: docker's 127, and --rm still removes it.
  rc = CliSplit({"run", "--rm", image_, "/no/such/program"}, &out, &err);
  EXPECT_EQ(rc, 127) << out << err;
  cpb::ListContainersResponse all;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
  }
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (all.containers_size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    grpc::ClientContext ctx;
    all.Clear();
    ASSERT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
  }
  EXPECT_EQ(all.containers_size(), 0) << "every --rm container was removed";
  EXPECT_EQ(ZoneCount(), 0) << "with its zone";
}

TEST_F(ContainerRunTest, AutoRemoveHappensInRauhadWithoutAnyClient) {
  // -d --rm: the CLI is gone long before the container ends.
  int rc = 0;
  std::string out = Cli({"run", "-d", "--rm", image_, "/bin/busybox", "sh", "-c", "exit 3"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string id = out.substr(0, out.find('\n'));
  // Wait answers whether it has been removed already or not.
  cpb::WaitContainerResponse waited;
  ASSERT_TRUE(Wait(id, &waited).ok());
  EXPECT_EQ(waited.exit_code(), 3);
  WaitGone(id);
  EXPECT_EQ(ZoneCount(), 0);

  // Through the API: created, started, stopped with a signal; WaitContainer's code is
  // 128 + SIGTERM, and the container goes without a DeleteContainer.
  ASSERT_TRUE(CreateAutoRemove({"/bin/busybox", "sleep", "1000"}, &id).ok());
  ASSERT_TRUE(Start(id).ok());
  EXPECT_TRUE(WaitForState(id, "Running").auto_remove());
  std::thread stopper([&] { EXPECT_TRUE(Stop(id, 5).ok()); });
  ASSERT_TRUE(Wait(id, &waited).ok());
  stopper.join();
  EXPECT_EQ(waited.exit_code(), 128 + SIGTERM);
  WaitGone(id);
  // Still answered after it is gone (from rauhad's memory of recent removals).
  ASSERT_TRUE(Wait(id, &waited).ok());
  EXPECT_TRUE(waited.removed());
  EXPECT_EQ(waited.exit_code(), 128 + SIGTERM);
  EXPECT_FALSE(waited.finished_at().empty());
  // Ids it never knew are still NotFound, malformed ones InvalidArgument.
  EXPECT_EQ(Wait("1b4e28ba-2fa1-11d2-883f-0016d3cca427", &waited).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Wait("nope", &waited).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ContainerRunTest, RunRmRemovesTheContainerWhenTheClientWasKilled) {
  std::string base = daemon_->dir() + "/killed-cli";
  pid_t cli = SpawnCli({RAUHA_CLI_BIN, "--socket", daemon_->socket(), "run", "--rm", "--name",
                        "orphan", image_, "/bin/busybox", "sleep", "1000"},
                       base + ".out", base + ".err");
  // Found by name once running.
  const std::string id = WaitForRunningNamed("orphan").id();
  ASSERT_FALSE(id.empty()) << ReadWholeFile(base + ".err");
  ASSERT_EQ(::kill(cli, SIGKILL), 0);
  ASSERT_EQ(::waitpid(cli, nullptr, 0), cli);
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.state(), "Running") << "killing the client does not stop the container";
  ASSERT_TRUE(Stop(id, 5).ok());
  WaitGone(id);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerRunTest, LogsWithTimestampsSinceAndUntil) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c",
                      "echo one; /bin/busybox sleep 1; echo two; echo three >&2"},
                     &id, "", "stamped")
                  .ok());
  ASSERT_TRUE(Start(id).ok());
  EXPECT_EQ(WaitForState(id, "Stopped").exit_code(), 0);
  auto all = Logs(id, false, 0);
  ASSERT_EQ(all.size(), 3u);
  int rc = 0;
  std::string out, err;
  rc = CliSplit({"logs", "-t", "stamped"}, &out, &err);
  EXPECT_EQ(rc, 0) << err;
  EXPECT_EQ(out, all[0].timestamp() + " one\n" + all[1].timestamp() + " two\n");
  EXPECT_EQ(err, all[2].timestamp() + " three\n");
  EXPECT_TRUE(
      std::regex_match(all[0].timestamp(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")))
      << all[0].timestamp();
  // `one` came a second before `two`: --since its time keeps it out.
  grpc::Status s;
  auto later = LogsBetween(id, all[1].timestamp(), "", &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].line(), "two");
  auto earlier = LogsBetween(id, "", all[1].timestamp(), &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(earlier.size(), 1u);
  EXPECT_EQ(earlier[0].line(), "one");
  rc = CliSplit({"logs", "--since", all[1].timestamp(), "--tail", "1", "stamped"}, &out, &err);
  EXPECT_EQ(rc, 0) << err;
  EXPECT_EQ(out, "") << "the last line is stderr's";
  EXPECT_EQ(err, "three\n");
  // A duration before now reaches back past all of it; a time in the future shows nothing.
  rc = CliSplit({"logs", "--since", "1h", "stamped"}, &out, &err);
  EXPECT_EQ(out, "one\ntwo\n");
  rc = CliSplit({"logs", "--since", "2200-01-01T00:00:00Z", "stamped"}, &out, &err);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out + err, "");
  // Bad times: refused by the CLI (usage) and by rauhad (INVALID_ARGUMENT).
  rc = CliSplit({"logs", "--since", "last tuesday", "stamped"}, &out, &err);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("not a time"), std::string::npos) << err;
  LogsBetween(id, "2026-11-30 16:20", "", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("RFC 3339"), std::string::npos) << s.error_message();
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

TEST_F(ContainerRunTest, FollowFromBeforeTheStartSeesItAllAndEndsAtTheExit) {
  std::string id;
  ASSERT_TRUE(CreateAutoRemove({"/bin/busybox", "sh", "-c", "echo first; echo second"}, &id).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  cpb::ContainerLogsRequest req;
  req.set_container_id(id);
  req.set_follow(true);
  req.set_wait_for_start(true);
  auto reader = containers_->ContainerLogs(&ctx, req);
  reader->WaitForInitialMetadata();
  ASSERT_TRUE(Start(id).ok());
  std::vector<std::string> lines;
  cpb::ContainerLogEntry e;
  while (reader->Read(&e)) lines.push_back(e.line());
  grpc::Status s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "second"}));
  cpb::WaitContainerResponse waited;
  ASSERT_TRUE(Wait(id, &waited).ok());
  EXPECT_EQ(waited.exit_code(), 0);
  WaitGone(id);
}

// Each container's lifecycle is in the signed audit log, in order, and the chain verifies.
TEST_F(ContainerRunTest, LifecycleIsInTheAuditChain) {
  std::string kept, removed;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &kept).ok());
  ASSERT_TRUE(Start(kept).ok());
  WaitForState(kept, "Running");
  ASSERT_TRUE(Stop(kept, 5).ok());
  ASSERT_TRUE(Delete(kept, false).ok());
  ASSERT_TRUE(CreateAutoRemove({"/bin/busybox", "sh", "-c", "exit 4"}, &removed).ok());
  ASSERT_TRUE(Start(removed).ok());
  cpb::WaitContainerResponse waited;
  ASSERT_TRUE(Wait(removed, &waited).ok());
  // The records of each container, "kind[:detail]".
  std::map<std::string, std::vector<std::string>> seen;
  std::string log = ReadWholeFile(State() + "/audit/log-000000.ndjson");
  size_t pos = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    if (nl == std::string::npos) nl = log.size();
    auto r = nlohmann::json::parse(log.substr(pos, nl - pos), nullptr, false);
    pos = nl + 1;
    if (!r.is_object() || !r.value("kind", "").starts_with("container.")) continue;
    const auto& body = r["body"];
    std::string kind = r["kind"];
    if (kind == "container.stop") kind += ":" + std::to_string(body.value("exit_code", -1));
    if (kind == "container.delete") kind += ":" + body.value("how", "");
    if (kind == "container.create") {
      EXPECT_TRUE(body.value("image_digest", "").starts_with("sha256:"));
    }
    seen[body.value("container_id", "")].push_back(kind);
  }
  EXPECT_EQ(seen[kept],
            (std::vector<std::string>{"container.create", "container.start", "container.stop:143",
                                      "container.delete:delete"}));
  EXPECT_EQ(seen[removed],
            (std::vector<std::string>{"container.create", "container.start", "container.stop:4",
                                      "container.delete:auto_remove"}));
  int rc = 0;
  std::string out = Cli({"audit", "verify", State() + "/audit"}, &rc);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace rauha::testing
