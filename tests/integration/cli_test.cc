// The `rauha` CLI against a real rauhad: what a user types, what they see, the exit codes.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/cli_runner.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

class CliTest : public DaemonTest {
 protected:
  // Starts `rauha --socket <daemon> args...`; returns its pid (output to files in the test dir).
  pid_t Spawn(std::vector<std::string> args) {
    args.insert(args.begin(), {RAUHA_CLI_BIN, "--socket", daemon_->socket()});
    out_path_ = daemon_->dir() + "/cli.out";
    err_path_ = daemon_->dir() + "/cli.err";
    return SpawnCli(std::move(args), out_path_, err_path_, extra_env_);
  }

  CliRun Finish(pid_t pid) { return FinishCli(pid, out_path_, err_path_); }

  CliRun Cli(std::vector<std::string> args) { return Finish(Spawn(std::move(args))); }

  void InterruptCancelsTheTask();
  void CutOffByACrashNamesTheTask();

  std::string out_path_, err_path_;
  // Put first in the CLI's environment (e.g. RAUHA_NO_FAST_PATH=1: RunSandbox over gRPC).
  std::vector<std::string> extra_env_;
};

TEST_F(CliTest, SandboxPrintsOneJsonResultAndExitsWithTheTaskCode) {
  auto r = Cli({"sandbox", "--", "/bin/sh", "-c", "echo hi; echo oops >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["exit_code"], 7);
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_EQ(j["stdout"], "hi\n");
  EXPECT_EQ(j["stderr"], "oops\n");
  EXPECT_TRUE(j["duration_ms"].is_number());
  EXPECT_TRUE(j["resources"]["peak_memory_bytes"].is_number());
  EXPECT_EQ(j["command"], nlohmann::json({"/bin/sh", "-c", "echo hi; echo oops >&2; exit 7"}));
}

TEST_F(CliTest, QuickStartTaskSeesTheRepoAtWorkspace) {
  std::string repo = daemon_->dir() + "/repo";
  std::filesystem::create_directories(repo);
  std::ofstream(repo + "/hello.txt") << "x";
  auto r = Cli({"sandbox", "--repo-path", repo, "--", "/bin/sh", "-c", "ls /workspace; echo done"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["stdout"], "hello.txt\ndone\n");
}

TEST_F(CliTest, ExitCodesForTimeoutRuntimeErrorAndUnreachableDaemon) {
  auto r = Cli({"sandbox", "--timeout", "1", "--", "/bin/sleep", "30"});
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_EQ(nlohmann::json::parse(r.out, nullptr, false)["status"], "timed_out");
  r = Cli({"sandbox", "--", "/no/such/binary"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(nlohmann::json::parse(r.out, nullptr, false)["status"], "runtime_error");
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(RAUHA_CLI_BIN, RAUHA_CLI_BIN, "--socket", "/nonexistent/rauhad.sock", "sandbox", "--",
            "/bin/true", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 125);
}

// main() builds the options of the command it is given alone (rauha-cli/command_word.h): its
// help, its usage errors and a global option whose value is a command's name must come out as
// they do with every command built. (A first cut crashed on `version --bogus`: the usage path
// asked CLI11 for the "sandbox" command, which it had not been given.)
TEST_F(CliTest, OneCommandBuiltAloneAnswersAsWithEveryCommand) {
  auto r = Cli({"version", "--bogus"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("The following argument was not expected: --bogus"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Run 'rauha --help' or 'rauha COMMAND --help' for usage."),
            std::string::npos)
      << r.err;
  r = Cli({"sandbox", "--zone", "z", "stray"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err,
            "rauha: sandbox: unknown option --zone; the zone to run in is --name ZONE\n"
            "Run 'rauha sandbox --help' for its options.\n");
  r = Cli({"sandbox", "ls", "-la"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("-la follows the command ls"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Put the command after --"), std::string::npos) << r.err;
  // A word before -- as well as a command after it: refused, nothing run (it ran "stray true").
  r = Cli({"sandbox", "--keep-zone", "stray", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("unexpected argument 'stray' before --"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  r = Cli({"version", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Usage: rauha version [OPTIONS]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
  r = Cli({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* command : {"sandbox", "zone", "run", "rm", "version", "audit"}) {
    EXPECT_NE(r.out.find(std::string("\n  ") + command + " "), std::string::npos)
        << "rauha --help lists " << command << "\n"
        << r.out;
  }
  // --socket takes the next word even when it names a command: here the socket is "version".
  const std::string out = daemon_->dir() + "/v.out", err = daemon_->dir() + "/v.err";
  r = FinishCli(SpawnCli({RAUHA_CLI_BIN, "--socket", "version", "version"}, out, err), out, err);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rauhad: not reached (cannot reach rauhad at version:"), std::string::npos)
      << r.out;
}

TEST_F(CliTest, ZoneCommandsAndErrors) {
  auto r = Cli({"zone", "create", "cli-zone"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"zone", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << r.out;
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "cli-zone");
  EXPECT_EQ(list[0]["state"], "Ready");
  r = Cli({"zone", "list"});
  EXPECT_NE(r.out.find("NAME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cli-zone"), std::string::npos) << r.out;
  r = Cli({"zone", "stats", "cli-zone", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out, nullptr, false)["pids_max"], 512);
  r = Cli({"zone", "pause", "cli-zone"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"zone", "show", "cli-zone", "--json"});
  EXPECT_EQ(nlohmann::json::parse(r.out, nullptr, false)["state"], "Paused") << r.out;
  r = Cli({"zone", "resume", "cli-zone"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"zone", "verify", "cli-zone"});
  EXPECT_EQ(r.exit_code, 0) << "every control of the standard policy is enforced here\n"
                            << r.out << r.err;
  EXPECT_NE(r.out.find("namespace.net"), std::string::npos) << r.out;
  r = Cli({"zone", "delete", "cli-zone"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"zone", "delete", "cli-zone"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  r = Cli({"zone", "create", "a/b"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid argument"), std::string::npos) << r.err;
}

TEST_F(CliTest, PolicyValidateShowAndApply) {
  std::string good = std::string(RAUHA_SOURCE_DIR) + "/policies/strict.toml";
  auto r = Cli({"policy", "validate", good});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string bad = daemon_->dir() + "/bad.toml";
  std::ofstream(bad) << "[resources]\npids_max = 0\n";
  r = Cli({"policy", "validate", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":2:"), std::string::npos) << r.err;
  ASSERT_EQ(Cli({"zone", "create", "pz", "--preset", "strict"}).exit_code, 0);
  r = Cli({"policy", "show", "pz"});
  EXPECT_NE(r.out.find("pids_max = 128"), std::string::npos) << r.out;
  std::string newer = daemon_->dir() + "/newer.toml";
  std::ofstream(newer) << "[resources]\npids_max = 99\n";
  r = Cli({"policy", "apply", "pz", newer});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"policy", "show", "pz"});
  EXPECT_NE(r.out.find("pids_max = 99"), std::string::npos) << r.out;
  EXPECT_EQ(Cli({"zone", "delete", "pz"}).exit_code, 0);
}

// The CLI crashed (stack overflow in toml++) on this file; a policy whose rules cannot apply is
// valid and the warning is printed, located, compiler style.
TEST_F(CliTest, PolicyValidateRefusesDeepKeysAndPrintsWarnings) {
  std::string deep = daemon_->dir() + "/deep.toml";
  {
    std::ofstream out(deep);
    out << "a";
    for (int i = 0; i < 150000; ++i) out << ".a";
    out << " = 1\n";
  }
  auto r = Cli({"policy", "validate", deep});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(deep + ":1:65537: the policy is longer than 65536 bytes"), std::string::npos)
      << r.err;
  std::string warned = daemon_->dir() + "/warned.toml";
  std::ofstream(warned) << "[network]\nmode = \"isolated\"\nallowed_egress = [\"0.0.0.0/0\"]\n";
  r = Cli({"policy", "validate", warned});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(warned + ":3:18: warning: network.allowed_egress has no effect"),
            std::string::npos)
      << r.err;
  r = Cli({"policy", "validate", "--json", warned});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["warnings"].size(), 1u) << r.out;
}

TEST_F(CliTest, InfoReportsTheKernel) {
  auto r = Cli({"info", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_TRUE(j["cgroup"]["mode"].is_string());
  bool has_landlock = false;
  for (const auto& f : j["features"]) has_landlock = has_landlock || f["name"] == "landlock";
  EXPECT_TRUE(has_landlock);
  // From rauhad: the layer of each control on this host.
  std::map<std::string, std::string> layer;
  for (const auto& c : j["enforcement"]["controls"]) layer[c["control"]] = c["layer"];
  EXPECT_EQ(layer["syscalls.deny"], "seccomp") << r.out;
  EXPECT_EQ(layer["devices"], "cgroup-bpf") << r.out;
  EXPECT_TRUE(layer.count("exec.denied")) << r.out;
}

TEST_F(CliTest, EventsFollowsEnforcementDenials) {
  ASSERT_TRUE(CreateZone("ev").ok());
  pid_t events = Spawn({"events", "--zone", "ev", "--json"});
  rauha::sandbox::v1::RunSandboxRequest req;
  req.set_name("ev");
  // The watcher subscribes asynchronously: deny until it has printed one (bounded).
  std::string out;
  for (int i = 0; i < 20 && out.find("cgroup/connect4") == std::string::npos; ++i) {
    Run({"/bin/bash", "-c", "(exec 3<>/dev/tcp/192.0.2.1/9) 2>/dev/null; true"}, req);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out = Slurp(out_path_);
  }
  ::kill(events, SIGINT);
  CliRun r = Finish(events);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  bool found = false;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    if (j["event_type"] != "enforcement") continue;
    EXPECT_EQ(j["zone_name"], "ev");
    EXPECT_EQ(j["enforcement"]["hook"], "cgroup/connect4");
    EXPECT_EQ(j["enforcement"]["layer"], "cgroup-bpf");
    EXPECT_EQ(j["enforcement"]["decision"], "deny");
    EXPECT_EQ(j["enforcement"]["object"], "192.0.2.1:9/tcp");
    EXPECT_EQ(j["enforcement"]["comm"], "bash");
    found = true;
  }
  EXPECT_TRUE(found) << r.out;
}

// rauha sandbox calls RunSandbox over rauhad's ttrpc endpoint, or over gRPC where that is not
// there (rauha-cli/sandbox_call.h): both must cancel on a signal and name a cut-off task.
TEST_F(CliTest, InterruptCancelsTheTaskAndRemovesItsZone) { InterruptCancelsTheTask(); }
TEST_F(CliTest, InterruptCancelsTheTaskAndRemovesItsZoneOverGrpc) {
  extra_env_ = {"RAUHA_NO_FAST_PATH=1"};
  InterruptCancelsTheTask();
}

void CliTest::InterruptCancelsTheTask() {
  pid_t cli = Spawn({"sandbox", "--", "/bin/sleep", "60"});
  ASSERT_FALSE(daemon_->WaitForRunningTask().empty());
  ::kill(cli, SIGINT);
  CliRun r = Finish(cli);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    rauha::zone::v1::ListZonesResponse zones;
    grpc::ClientContext ctx;
    gone = daemon_->Zones()->ListZones(&ctx, {}, &zones).ok() && zones.zones_size() == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "the temporary zone is removed when the client goes away";
}

// Issue 8 item 11 (issue 9: "a client whose rauhad went away is told how to collect"). On the
// old main a `rauha sandbox` cut off by a rauhad crash printed only gRPC's error (exit 125):
// the task ran on in its shim, but its id, needed by `rauha task wait`, was never shown.
TEST_F(CliTest, SandboxCutOffByARauhadCrashNamesTheTaskToCollect) { CutOffByACrashNamesTheTask(); }
TEST_F(CliTest, SandboxCutOffByARauhadCrashNamesTheTaskToCollectOverGrpc) {
  extra_env_ = {"RAUHA_NO_FAST_PATH=1"};
  CutOffByACrashNamesTheTask();
}

void CliTest::CutOffByACrashNamesTheTask() {
  char tmpl[] = "/tmp/rauha-cutoff-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string repo = tmpl;
  struct RemoveRepo {
    std::string dir;
    ~RemoveRepo() { std::filesystem::remove_all(dir); }
  } remove_repo{repo};
  // The task ends when the test says so (a file in its workspace), never by a clock.
  const std::vector<std::string> sandbox = {
      "sandbox",
      "--repo-path",
      repo,
      "--timeout",
      "300",
      "--",
      "/bin/sh",
      "-c",
      "while [ ! -e /workspace/go ]; do sleep 0.05; done; echo collected; exit 3"};

  std::string task_id;
  CliRun cut;
  // rauhad sends the id as soon as the task is recorded, and publishes "task.started" just
  // after: a crash after that event always finds the client told. (A crash landing before the
  // send is the test's own race: the task is collected and the drill repeated.)
  for (int attempt = 0; attempt < 3 && task_id.empty(); ++attempt) {
    grpc::ClientContext watch_ctx;
    watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto watch = daemon_->Zones()->WatchEvents(&watch_ctx, {});
    pid_t cli = Spawn(sandbox);
    rauha::zone::v1::ZoneEvent ev;
    std::string started;
    while (started.empty() && watch->Read(&ev)) {
      if (ev.event_type() == "task.started")
        started = ev.message().substr(0, ev.message().find(':'));
    }
    ASSERT_FALSE(started.empty()) << "the task never started";
    daemon_->Kill9();
    watch_ctx.TryCancel();
    (void)watch->Finish();
    cut = Finish(cli);
    daemon_->Start();
    if (cut.err.find(started) != std::string::npos) {
      task_id = started;
      break;
    }
    // Not told (the old main, or the crash beat the send): collect it and try again.
    std::ofstream(repo + "/go").put('\n');
    Cli({"task", "wait", started});
    std::filesystem::remove(repo + "/go");
  }
  ASSERT_FALSE(task_id.empty()) << "the cut-off client never named the task: " << cut.err;
  EXPECT_EQ(cut.exit_code, 125) << cut.err;
  EXPECT_NE(cut.err.find("rauhad went away while task " + task_id +
                         " ran; collect its result "
                         "with `rauha task wait " +
                         task_id + "`"),
            std::string::npos)
      << cut.err;
  EXPECT_TRUE(cut.out.empty()) << cut.out;

  // The task ran on in its shim; the restarted rauhad has it, and the command collects it.
  std::ofstream(repo + "/go").put('\n');
  CliRun waited = Cli({"task", "wait", task_id});
  EXPECT_EQ(waited.exit_code, 3) << waited.err;
  auto j = nlohmann::json::parse(waited.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << waited.out;
  EXPECT_EQ(j["task_id"], task_id);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_EQ(j["stdout"], "collected\n");
  // Collected once: the temporary zone is gone and the task with it.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    rauha::zone::v1::ListZonesResponse zones;
    grpc::ClientContext ctx;
    gone = daemon_->Zones()->ListZones(&ctx, {}, &zones).ok() && zones.zones_size() == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "the collected task's temporary zone is removed";
  EXPECT_EQ(Cli({"task", "wait", task_id}).exit_code, 125) << "a result is collected once";
}

}  // namespace
}  // namespace rauha::testing
