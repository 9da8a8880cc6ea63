// Containers end to end against a real rauhad, a loopback docker-registry and the kernel: an
// image of busybox-static pushed with skopeo and pulled by rauhad, then containers created,
// started, exec'd into, attached to, logged, stopped and removed, with what the kernel and
// the state dir hold checked at each end (no process, no overlay mount in any namespace, no
// upper directory, no zone).
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

namespace fs = std::filesystem;

TEST_F(ContainerTest, RunsWithImageConfigExitCodeLogsAndLeavesNothingAfterDelete) {
  ASSERT_TRUE(CreateZone("web").ok());
  std::string id;
  // No command: the image's Cmd, in its WorkingDir, with its Env.
  ASSERT_TRUE(Create({}, &id, "web", "first").ok());
  EXPECT_TRUE(std::regex_match(
      id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")));
  ASSERT_TRUE(Start(id).ok());
  cpb::ContainerInfo info = WaitForState(id, "Stopped");
  EXPECT_TRUE(info.has_exit_code());
  EXPECT_EQ(info.exit_code(), 0);
  EXPECT_EQ(info.name(), "first");
  EXPECT_EQ(info.zone_name(), "web");
  EXPECT_EQ(info.image(), image_);
  EXPECT_TRUE(info.image_digest().starts_with("sha256:"));
  EXPECT_FALSE(info.finished_at().empty());
  auto logs = Logs(id, false, 0);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].line(), "from-cmd image-env");
  EXPECT_EQ(logs[1].line(), "/srv");
  EXPECT_TRUE(std::regex_match(logs[0].timestamp(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")))
      << logs[0].timestamp();

  // A command of its own: its exit code, stdout and stderr apart, in order per stream.
  std::string second;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"},
                     &second, "web")
                  .ok());
  ASSERT_TRUE(Start(second).ok());
  info = WaitForState(second, "Stopped");
  EXPECT_EQ(info.exit_code(), 3);
  std::vector<std::string> out, err;
  for (const auto& e : Logs(second, true, 0)) {
    (e.source() == "stdout" ? out : err).push_back(e.line());
  }
  EXPECT_EQ(out, (std::vector<std::string>{"out1", "out2"}));
  EXPECT_EQ(err, (std::vector<std::string>{"err1"}));
  EXPECT_EQ(Logs(second, false, 1).size(), 1u);

  // Listing: per zone and all.
  {
    grpc::ClientContext ctx;
    cpb::ListContainersRequest req;
    req.set_zone_name("web");
    cpb::ListContainersResponse resp;
    ASSERT_TRUE(containers_->ListContainers(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.containers_size(), 2);
  }
  // Started again, it runs again on the same upper layer.
  ASSERT_TRUE(Start(second).ok());
  EXPECT_EQ(WaitForState(second, "Stopped").exit_code(), 3);

  ASSERT_TRUE(Delete(id, false).ok());
  ASSERT_TRUE(Delete(second, false).ok());
  ExpectGone(id);
  ExpectGone(second);
  EXPECT_EQ(Delete(second, false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ZoneCount(), 1) << "a named zone stays";
}

TEST_F(ContainerTest, StopSendsSigtermThenSigkillAfterTheTimeout) {
  std::string polite, stubborn;
  ASSERT_TRUE(
      Create({"/bin/busybox", "sh", "-c", "echo up; exec /bin/busybox sleep 1000"}, &polite).ok());
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c",
                      "trap '' TERM; echo up; /bin/busybox sleep 1000; echo after"},
                     &stubborn)
                  .ok());
  for (const auto& id : {polite, stubborn}) {
    ASSERT_TRUE(Start(id).ok());
    // Up means its shell is past the trap.
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (Logs(id, false, 0).empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    cpb::ContainerInfo info;
    ASSERT_TRUE(Get(id, &info).ok());
    EXPECT_EQ(info.state(), "Running");
    EXPECT_GT(info.pid(), 0u);
  }
  ASSERT_TRUE(Stop(polite, 30).ok());
  cpb::ContainerInfo info;
  ASSERT_TRUE(Get(polite, &info).ok());
  EXPECT_EQ(info.state(), "Stopped");
  EXPECT_EQ(info.exit_code(), 128 + SIGTERM);

  auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(Stop(stubborn, 2).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 2s) << "SIGKILL came before the timeout";
  ASSERT_TRUE(Get(stubborn, &info).ok());
  EXPECT_EQ(info.exit_code(), 128 + SIGKILL);
  // Each had a zone of its own; deleting the container deletes it.
  EXPECT_EQ(ZoneCount(), 2);
  ASSERT_TRUE(Delete(polite, false).ok());
  ASSERT_TRUE(Delete(stubborn, false).ok());
  ExpectGone(polite);
  ExpectGone(stubborn);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerTest, ExecJoinsTheContainerCapturedAndStreamed) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c",
                      "echo marker > /tmp/marker; exec /bin/busybox sleep 1000"},
                     &id, "", "exec-target")
                  .ok());
  cpb::ExecInContainerResponse resp;
  EXPECT_EQ(Exec(id, {"/bin/busybox", "true"}, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "a created container has nothing to exec into";
  ASSERT_TRUE(Start(id).ok());
  // Its /tmp (a tmpfs of its own mount namespace) and its processes (pid 2: the sleep, under
  // rauha-init as 1) are what the exec sees.
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(Exec(id, {"/bin/busybox", "cat", "/tmp/marker"}, &resp).ok());
    if (resp.stdout() == "marker\n") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(resp.stdout(), "marker\n");
  ASSERT_TRUE(Exec(id,
                   {"/bin/busybox", "sh", "-c",
                    "/bin/busybox cat /proc/2/cmdline | /bin/busybox tr '\\0' ' '; echo; "
                    "echo $FROM_IMAGE $FROM_EXEC; /bin/busybox pwd; echo oops >&2; exit 7"},
                   &resp)
                  .ok());
  EXPECT_EQ(resp.exit_code(), 7);
  EXPECT_EQ(resp.stdout(), "/bin/busybox sleep 1000 \nimage-env exec-env\n/srv\n");
  EXPECT_EQ(resp.stderr(), "oops\n");
  ASSERT_TRUE(Exec(id, {"/no/such/program"}, &resp).ok());
  EXPECT_EQ(resp.exit_code(), 127);
  EXPECT_NE(resp.stderr().find("/no/such/program"), std::string::npos) << resp.stderr();

  // Streamed with stdin: cat echoes what it is sent and ends at the client's half-close.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    auto stream = containers_->ExecStream(&ctx);
    cpb::ExecStreamRequest start;
    start.mutable_start()->set_container_id(id);
    start.mutable_start()->add_command("/bin/busybox");
    start.mutable_start()->add_command("cat");
    ASSERT_TRUE(stream->Write(start));
    cpb::ExecStreamRequest in;
    in.set_stdin_data("one\ntwo\n");
    ASSERT_TRUE(stream->Write(in));
    stream->WritesDone();
    std::string out;
    std::optional<int> code;
    cpb::ExecStreamResponse r;
    while (stream->Read(&r)) {
      if (r.has_exit_code()) code = r.exit_code();
      out += r.stdout_data();
    }
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_EQ(out, "one\ntwo\n");
    EXPECT_EQ(code, 0);
  }
  // With a terminal: the command's stdin is a tty of its own, its output comes back.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    auto stream = containers_->ExecStream(&ctx);
    cpb::ExecStreamRequest start;
    start.mutable_start()->set_container_id(id);
    for (const char* w : {"/bin/busybox", "sh", "-c",
                          "/bin/busybox test -t 0 && echo is-a-tty; read line; echo got:$line"}) {
      start.mutable_start()->add_command(w);
    }
    start.mutable_start()->set_tty(true);
    ASSERT_TRUE(stream->Write(start));
    cpb::ExecStreamRequest resize;
    resize.mutable_resize()->set_rows(40);
    resize.mutable_resize()->set_cols(100);
    ASSERT_TRUE(stream->Write(resize));
    cpb::ExecStreamRequest in;
    in.set_stdin_data("abc\n");
    ASSERT_TRUE(stream->Write(in));
    std::string out;
    std::optional<int> code;
    cpb::ExecStreamResponse r;
    while (stream->Read(&r)) {
      if (r.has_exit_code()) {
        code = r.exit_code();
        stream->WritesDone();
      }
      out += r.stdout_data();
    }
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_NE(out.find("is-a-tty"), std::string::npos) << out;
    EXPECT_NE(out.find("got:abc"), std::string::npos) << out;
    EXPECT_EQ(code, 0);
  }
  ASSERT_TRUE(Delete(id, true).ok()) << "force deletes a running container";
  ExpectGone(id);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerTest, AttachGetsOutputAndSendsStdin) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c", "echo ready; /bin/busybox cat; echo bye"}, &id,
                     "", "", /*open_stdin=*/true)
                  .ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  auto stream = containers_->Attach(&ctx);
  cpb::AttachRequest start;
  start.mutable_start()->set_container_id(id);
  ASSERT_TRUE(stream->Write(start));
  // The first message (no data) says the attach is in place: started only then, nothing of
  // the output is missed (the CLI's run -i does the same).
  cpb::AttachResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.stdout_data(), "");
  ASSERT_TRUE(Start(id).ok());
  cpb::ContainerInfo info;
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  std::string out;
  std::optional<int> code;
  bool sent = false;
  while (stream->Read(&r)) {
    if (r.has_exit_code()) {
      code = r.exit_code();
      break;
    }
    out += r.stdout_data();
    if (!sent && out.find("ready\n") != std::string::npos) {
      cpb::AttachRequest in;
      in.set_stdin_data("ping\n");
      ASSERT_TRUE(stream->Write(in));
      stream->WritesDone();  // the container's cat sees EOF
      sent = true;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("ping\nbye\n"), std::string::npos) << out;
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.state(), "Stopped");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

TEST_F(ContainerTest, BadIdsNamesAndImagesAreRefusedAndChangeNothing) {
  cpb::ContainerInfo info;
  for (const char* bad : {"", "not-a-uuid", "../../etc", "1b4e28ba-2fa1-11d2-883f-0016d3cca42"}) {
    EXPECT_EQ(Get(bad, &info).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(Start(bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(Stop(bad, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(Delete(bad, true).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  const std::string unknown = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
  EXPECT_EQ(Get(unknown, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Start(unknown).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stop(unknown, 1).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(unknown, false).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status logs_status;
  Logs(unknown, false, 0, &logs_status);
  EXPECT_EQ(logs_status.error_code(), grpc::StatusCode::NOT_FOUND);
  cpb::ExecInContainerResponse exec;
  EXPECT_EQ(Exec(unknown, {"/bin/busybox", "true"}, &exec).error_code(),
            grpc::StatusCode::NOT_FOUND);

  std::string id;
  cpb::CreateContainerRequest missing;
  missing.set_image(registry_->host() + "/test/absent:v1");
  {
    grpc::ClientContext ctx;
    cpb::CreateContainerResponse resp;
    grpc::Status s = containers_->CreateContainer(&ctx, missing, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_NE(s.error_message().find("rauha image pull"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(Create({"/bin/busybox", "true"}, &id, "no-such-zone").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Create({"/bin/busybox", "true"}, &id, "", "bad/name").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ZoneCount(), 0) << "a refused create leaves no zone";
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &id, "", "taken").ok());
  std::string other;
  EXPECT_EQ(Create({"/bin/busybox", "true"}, &other, "", "taken").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ZoneCount(), 1) << "the refused duplicate's zone is gone again";
  ASSERT_TRUE(Start(id).ok());
  EXPECT_EQ(Delete(id, false).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(WaitForState(id, "Running").state(), "Running") << "a refused delete changes nothing";
  ASSERT_TRUE(Delete(id, true).ok());
  ExpectGone(id);
  EXPECT_FALSE(fs::exists(State() + "/containers") && !fs::is_empty(State() + "/containers"));
}

TEST_F(ContainerTest, ContainerOutlivesARauhadCrash) {
  std::string id;
  ASSERT_TRUE(
      Create({"/bin/busybox", "sh", "-c", "echo before; /bin/busybox sleep 1000"}, &id).ok());
  ASSERT_TRUE(Start(id).ok());
  cpb::ContainerInfo before = WaitForState(id, "Running");
  daemon_->Kill9();
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  cpb::ContainerInfo after;
  ASSERT_TRUE(Get(id, &after).ok());
  EXPECT_EQ(after.state(), "Running");
  EXPECT_EQ(after.pid(), before.pid());
  EXPECT_EQ(::kill(static_cast<pid_t>(before.pid()), 0), 0) << "its process still runs";
  cpb::ExecInContainerResponse exec;
  ASSERT_TRUE(Exec(id, {"/bin/busybox", "echo", "still-here"}, &exec).ok());
  EXPECT_EQ(exec.stdout(), "still-here\n");
  ASSERT_TRUE(Stop(id, 5).ok());
  ASSERT_TRUE(Get(id, &after).ok());
  EXPECT_EQ(after.exit_code(), 128 + SIGTERM);
  auto logs = Logs(id, false, 0);
  ASSERT_FALSE(logs.empty());
  EXPECT_EQ(logs[0].line(), "before");
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

TEST_F(ContainerTest, LogIsRotatedAtItsSizeLimit) {
  TearDownDaemon();
  StartDaemon({"--container-log-max", "4096"});
  std::string id;
  // 300 numbered lines of ~60 bytes: ~25 KiB of records, six times the limit.
  ASSERT_TRUE(Create({"/bin/busybox", "sh", "-c",
                      "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                      "i=$((i+1)); done"},
                     &id)
                  .ok());
  ASSERT_TRUE(Start(id).ok());
  EXPECT_EQ(WaitForState(id, "Stopped").exit_code(), 0);
  std::string dir = State() + "/containers/" + id;
  ASSERT_TRUE(fs::exists(dir + "/container.log.1"));
  EXPECT_LE(fs::file_size(dir + "/container.log"), 4096u);
  EXPECT_LE(fs::file_size(dir + "/container.log.1"), 4096u);
  EXPECT_FALSE(fs::exists(dir + "/container.log.2"));
  auto last = Logs(id, false, 3);
  ASSERT_EQ(last.size(), 3u);
  EXPECT_TRUE(last[2].line().starts_with("line-299-")) << last[2].line();
  EXPECT_TRUE(last[0].line().starts_with("line-297-")) << last[0].line();
  // What is kept is a contiguous run ending at the last line.
  auto all = Logs(id, false, 0);
  ASSERT_GT(all.size(), 3u);
  int first = std::stoi(all[0].line().substr(5));
  EXPECT_EQ(static_cast<int>(all.size()), 300 - first);
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

TEST_F(ContainerTest, CliRunPsLogsExecStopRm) {
  int rc = 0;
  std::string out =
      Cli({"run", "--rm", image_, "/bin/busybox", "sh", "-c", "echo hi; exit 5"}, &rc);
  EXPECT_EQ(rc, 5) << out;
  EXPECT_EQ(out, "hi\n");
  out = Cli({"ps", "-a"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out.find("busybox"), std::string::npos) << "--rm removed it:\n" << out;
  EXPECT_EQ(ZoneCount(), 0) << "and its zone";

  out = Cli({"run", "-d", "--name", "web", "-e", "GREETING=hello", image_, "/bin/busybox", "sh",
             "-c", "echo $GREETING; exec /bin/busybox sleep 1000"},
            &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string id = out.substr(0, out.find('\n'));
  out = Cli({"ps"}, &rc);
  EXPECT_NE(out.find("web"), std::string::npos) << out;
  EXPECT_NE(out.find(id.substr(0, 12)), std::string::npos) << out;
  out = Cli({"exec", "web", "/bin/busybox", "sh", "-c", "echo in-$GREETING; exit 4"}, &rc);
  EXPECT_EQ(rc, 4);
  EXPECT_EQ(out, "in-hello\n");
  out = Cli({"exec", id.substr(0, 8), "/bin/busybox", "true"}, &rc);
  EXPECT_EQ(rc, 0) << "an id prefix names it: " << out;
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    out = Cli({"logs", "web"}, &rc);
    if (out == "hello\n") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(out, "hello\n");
  out = Cli({"rm", "web"}, &rc);
  EXPECT_NE(rc, 0) << "a running container needs -f";
  out = Cli({"stop", "-t", "5", "web"}, &rc);
  EXPECT_EQ(rc, 0) << out;
  out = Cli({"ps"}, &rc);
  EXPECT_EQ(out.find("web"), std::string::npos) << out;
  out = Cli({"ps", "-a"}, &rc);
  EXPECT_NE(out.find("Exited (143)"), std::string::npos) << out;
  out = Cli({"rm", "web"}, &rc);
  EXPECT_EQ(rc, 0) << out;
  ExpectGone(id);
  out = Cli({"logs", "web"}, &rc);
  EXPECT_NE(rc, 0);
}

TEST_F(ContainerTest, ZoneCountsItsContainersAndDeletingItNeedsForce) {
  ASSERT_TRUE(CreateZone("shared").ok());
  std::string running, created;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &running, "shared").ok());
  ASSERT_TRUE(Create({"/bin/busybox", "true"}, &created, "shared").ok());
  ASSERT_TRUE(Start(running).ok());
  WaitForState(running, "Running");
  {
    grpc::ClientContext ctx;
    zpb::GetZoneRequest req;
    req.set_name("shared");
    zpb::GetZoneResponse resp;
    ASSERT_TRUE(daemon_->Zones()->GetZone(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.zone().container_count(), 2u);
  }
  auto delete_zone = [&](bool force) {
    grpc::ClientContext ctx;
    zpb::DeleteZoneRequest req;
    req.set_name("shared");
    req.set_force(force);
    zpb::DeleteZoneResponse resp;
    return daemon_->Zones()->DeleteZone(&ctx, req, &resp);
  };
  grpc::Status refused = delete_zone(false);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("2 container(s)"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(WaitForState(running, "Running").state(), "Running") << "the refusal changed nothing";
  ASSERT_TRUE(delete_zone(true).ok());
  ExpectGone(running);
  ExpectGone(created);
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
