// Signals and ports of containers as docker users know them, against a real rauhad: a
// foreground `rauha run` sends the signals it gets to the container (--sig-proxy, the
// default) and exits with the container's code; --sig-proxy=false leaves the container
// running; `rauha kill`; the image config's ExposedPorts shown by ps, inspect and
// GetContainer.
#include <sys/wait.h>

#include "nlohmann/json.hpp"
#include "tests/integration/container_fixture.h"
#include "tests/integration/local_image.h"
#include "tests/integration/tar_builder.h"

namespace rauha::testing {
namespace {

// Prints "ready" once its traps are set, then waits; `trapped` ends it with `code` and a line.
std::string Trapping(const std::string& trapped, int code) {
  return "trap 'echo got-" + trapped + "; exit " + std::to_string(code) + "' " + trapped +
         "; echo ready; while :; do /bin/busybox sleep 0.05; done";
}

class ContainerSignalTest : public ContainerTest {
 protected:
  // A CLI started in the background, its output in files.
  struct Background {
    pid_t pid = -1;
    std::string out_file, err_file;
  };
  Background StartCli(const std::vector<std::string>& args) {
    static int n = 0;
    Background b;
    b.out_file = daemon_->dir() + "/bg-" + std::to_string(++n) + ".out";
    b.err_file = daemon_->dir() + "/bg-" + std::to_string(n) + ".err";
    std::vector<std::string> argv = {RAUHA_CLI_BIN, "--socket", daemon_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    b.pid = SpawnCli(argv, b.out_file, b.err_file);
    return b;
  }
  // Waits until the CLI has printed `text` (it prints the container's output only once its
  // signal proxy is in place).
  bool WaitForOutput(const Background& b, const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadWholeFile(b.out_file).find(text) != std::string::npos) return true;
      if (::waitpid(b.pid, nullptr, WNOHANG) == b.pid) return false;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Its exit code once it exits within the deadline (-1: killed by a signal, or SIGKILLed
  // by the test after the deadline).
  int WaitCli(const Background& b) {
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(b.pid, &status, WNOHANG) == b.pid) {
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "the CLI did not exit; its stderr: " << ReadWholeFile(b.err_file);
    ::kill(b.pid, SIGKILL);
    ::waitpid(b.pid, &status, 0);
    return -1;
  }
  int ContainerCount() {
    grpc::ClientContext ctx;
    cpb::ListContainersResponse all;
    EXPECT_TRUE(containers_->ListContainers(&ctx, {}, &all).ok());
    return all.containers_size();
  }
  // Waits (a condition with a deadline) until no container and no zone is left.
  void ExpectAllGone() {
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline &&
           (ContainerCount() > 0 || ZoneCount() > 0)) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(ContainerCount(), 0);
    EXPECT_EQ(ZoneCount(), 0);
  }
};

TEST_F(ContainerSignalTest, ForegroundRunSendsItsSignalsToTheContainerAndExitsWithItsCode) {
  struct Case {
    int signo;
    const char* name;
    int code;
    bool interactive;  // -i: the attach stream instead of the log follow
  };
  for (const Case& c : {Case{SIGTERM, "TERM", 42, false}, Case{SIGINT, "INT", 43, false},
                        Case{SIGHUP, "HUP", 44, false}, Case{SIGUSR1, "USR1", 45, false},
                        Case{SIGTERM, "TERM", 46, true}}) {
    SCOPED_TRACE(std::string(c.name) + (c.interactive ? " with -i" : ""));
    std::vector<std::string> args = {"run", "--rm"};
    if (c.interactive) args.push_back("-i");
    for (const char* w : {image_.c_str(), "/bin/busybox", "sh", "-c"}) args.push_back(w);
    args.push_back(Trapping(c.name, c.code));
    Background cli = StartCli(args);
    ASSERT_TRUE(WaitForOutput(cli, "ready\n")) << ReadWholeFile(cli.err_file);
    ASSERT_EQ(::kill(cli.pid, c.signo), 0);
    EXPECT_EQ(WaitCli(cli), c.code) << ReadWholeFile(cli.err_file);
    EXPECT_EQ(ReadWholeFile(cli.out_file), std::string("ready\ngot-") + c.name + "\n");
  }
  // A container that does not handle it dies of it: 128 + N, as a shell says it.
  Background cli = StartCli({"run", "--rm", image_, "/bin/busybox", "sh", "-c",
                             "echo ready; while :; do /bin/busybox sleep 0.05; done"});
  ASSERT_TRUE(WaitForOutput(cli, "ready\n")) << ReadWholeFile(cli.err_file);
  ASSERT_EQ(::kill(cli.pid, SIGTERM), 0);
  EXPECT_EQ(WaitCli(cli), 128 + SIGTERM) << ReadWholeFile(cli.err_file);
  ExpectAllGone();
}

TEST_F(ContainerSignalTest, WithoutSigProxyTheSignalDetachesAndTheContainerKeepsRunning) {
  Background cli = StartCli({"run", "--rm", "--sig-proxy=false", "--name", "kept", image_,
                             "/bin/busybox", "sh", "-c", Trapping("INT", 9)});
  ASSERT_TRUE(WaitForOutput(cli, "ready\n")) << ReadWholeFile(cli.err_file);
  ASSERT_EQ(::kill(cli.pid, SIGINT), 0);
  // The CLI's own ^C: it stops following, as if the signal had ended it.
  EXPECT_EQ(WaitCli(cli), 128 + SIGINT) << ReadWholeFile(cli.err_file);
  EXPECT_EQ(ReadWholeFile(cli.out_file), "ready\n");
  int rc = 0;
  std::string out = Cli({"inspect", "kept"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  auto info = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(info.is_array() && info.size() == 1) << out;
  std::string id = info[0].value("id", "");
  EXPECT_EQ(info[0].value("state", ""), "Running") << "the signal did not reach it";
  // `rauha kill -s INT` does reach it; its trap's code is its exit code.
  out = Cli({"kill", "-s", "SIGINT", "kept"}, &rc);
  EXPECT_EQ(rc, 0) << out;
  cpb::WaitContainerResponse waited;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    cpb::WaitContainerRequest req;
    req.set_container_id(id);
    ASSERT_TRUE(containers_->WaitContainer(&ctx, req, &waited).ok());
  }
  EXPECT_EQ(waited.exit_code(), 9);
  WaitGone(id);
  EXPECT_EQ(ZoneCount(), 0);
}

TEST_F(ContainerSignalTest, KillRefusesBadSignalsAndStoppedContainers) {
  std::string id;
  ASSERT_TRUE(Create({"/bin/busybox", "sleep", "1000"}, &id).ok());
  auto kill = [&](int signo) {
    grpc::ClientContext ctx;
    cpb::KillContainerRequest req;
    req.set_container_id(id);
    req.set_signal(signo);
    cpb::KillContainerResponse resp;
    return containers_->KillContainer(&ctx, req, &resp);
  };
  EXPECT_EQ(kill(SIGTERM).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "a Created container has no process";
  ASSERT_TRUE(Start(id).ok());
  WaitForState(id, "Running");
  for (int bad : {-1, 65, 1000}) {
    grpc::Status s = kill(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("not a signal"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(WaitForState(id, "Running").state(), "Running") << "bad signals changed nothing";
  int rc = 0;
  std::string out = Cli({"kill", "-s", "NOSUCH", id}, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("not a signal"), std::string::npos) << out;
  // 0 is SIGKILL (the default of `rauha kill`).
  ASSERT_TRUE(kill(0).ok());
  EXPECT_EQ(WaitForState(id, "Stopped").exit_code(), 128 + SIGKILL);
  EXPECT_EQ(kill(SIGTERM).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext ctx;
  cpb::KillContainerRequest req;
  req.set_container_id("nope");
  cpb::KillContainerResponse resp;
  EXPECT_EQ(containers_->KillContainer(&ctx, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Delete(id, false).ok());
  ExpectGone(id);
}

TEST_F(ContainerSignalTest, ExposedPortsOfTheImageShowInPsInspectAndGet) {
  TarBuilder layer;
  layer.Dir("bin").File("bin/busybox", BusyboxBinary(), {.perm = 0755});
  std::string gz = layer.Build(image::LayerCompression::kGzip);
  RecordLocalImage(
      State(), {gz},
      {{"config",
        {{"Cmd", {"/bin/busybox", "sleep", "1000"}},
         {"ExposedPorts",
          {{"8080/tcp", nlohmann::json::object()}, {"53/udp", nlohmann::json::object()}}}}}},
      "rauha-test/ports:1");
  int rc = 0;
  std::string out = Cli({"run", "-d", "--name", "web", "rauha-test/ports:1"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string id = out.substr(0, out.find('\n'));
  cpb::ContainerInfo info = WaitForState(id, "Running");
  EXPECT_EQ(std::vector<std::string>(info.exposed_ports().begin(), info.exposed_ports().end()),
            (std::vector<std::string>{"53/udp", "8080/tcp"}));
  // ps: a PORTS column, docker's way.
  out = Cli({"ps"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("PORTS"), std::string::npos) << out;
  size_t row = out.find(id.substr(0, 12));
  ASSERT_NE(row, std::string::npos) << out;
  std::string line = out.substr(row, out.find('\n', row) - row);
  EXPECT_NE(line.find("53/udp, 8080/tcp"), std::string::npos) << out;
  for (const auto& args :
       {std::vector<std::string>{"inspect", "web"}, std::vector<std::string>{"ps", "--json"}}) {
    out = Cli(args, &rc);
    ASSERT_EQ(rc, 0) << out;
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_TRUE(j.is_array() && j.size() == 1) << out;
    EXPECT_EQ(j[0]["exposed_ports"], nlohmann::json({"53/udp", "8080/tcp"})) << out;
  }
  // The same after a rauhad crash (kept in the container's record).
  daemon_->Kill9();
  daemon_->Start();
  containers_ = cpb::ContainerService::NewStub(daemon_->Channel());
  ASSERT_TRUE(Get(id, &info).ok());
  EXPECT_EQ(info.exposed_ports_size(), 2);
  // An image without ExposedPorts: none.
  std::string plain;
  ASSERT_TRUE(Create({"/bin/busybox", "true"}, &plain).ok());
  ASSERT_TRUE(Get(plain, &info).ok());
  EXPECT_EQ(info.exposed_ports_size(), 0);
  ASSERT_TRUE(Delete(plain, false).ok());
  ASSERT_TRUE(Delete(id, true).ok());
  ExpectGone(id);
  // A config whose ExposedPorts is not PORT/PROTO: refused, naming the field, nothing made.
  RecordLocalImage(State(), {gz},
                   {{"config",
                     {{"Cmd", {"/bin/busybox", "true"}},
                      {"ExposedPorts", {{"http/tcp", nlohmann::json::object()}}}}}},
                   "rauha-test/badports:1");
  cpb::CreateContainerRequest req;
  req.set_image("rauha-test/badports:1");
  grpc::ClientContext ctx;
  cpb::CreateContainerResponse resp;
  grpc::Status s = containers_->CreateContainer(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("ExposedPorts"), std::string::npos) << s.error_message();
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
