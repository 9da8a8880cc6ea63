// The task contract as a user meets it: who the task runs as, what reaches its stdin, how a
// timeout ends it, what becomes of its bytes, and the small promises around zones (hostnames,
// pause/resume, force delete). Each test drives a real rauhad (and, where the user would, the
// real `rauha` CLI) and checks what the kernel and the host show.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "rauha-common/hostname.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

using namespace std::string_literals;
namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class TaskContractTest : public DaemonTest {
 protected:
  // `rauha --socket <daemon> args...` with `stdin_path` (default /dev/null) as its stdin.
  CliRun Cli(std::vector<std::string> args, const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), {RAUHA_CLI_BIN, "--socket", daemon_->socket()});
    std::string out_path = daemon_->dir() + "/cli.out", err_path = daemon_->dir() + "/cli.err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int in = ::open(stdin_path.c_str(), O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = Slurp(out_path);
    r.err = Slurp(err_path);
    return r;
  }

  grpc::Status Pause(const std::string& name) {
    zpb::PauseZoneRequest req;
    req.set_name(name);
    zpb::PauseZoneResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->PauseZone(&ctx, req, &resp);
  }
  grpc::Status Resume(const std::string& name) {
    zpb::ResumeZoneRequest req;
    req.set_name(name);
    zpb::ResumeZoneResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->ResumeZone(&ctx, req, &resp);
  }
  std::string State(const std::string& name) {
    zpb::GetZoneRequest req;
    req.set_name(name);
    zpb::GetZoneResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->GetZone(&ctx, req, &resp).ok());
    return resp.zone().state();
  }
  grpc::Status Delete(const std::string& name, bool force) {
    zpb::DeleteZoneRequest req;
    req.set_name(name);
    req.set_force(force);
    zpb::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    return daemon_->Zones()->DeleteZone(&ctx, req, &resp);
  }
};

TEST_F(TaskContractTest, PauseOfPausedAndResumeOfReadyAreBothNoOps) {
  ASSERT_TRUE(CreateZone("pr").ok());
  grpc::Status st = Resume("pr");
  EXPECT_TRUE(st.ok()) << "resume of a Ready zone: " << st.error_message();
  EXPECT_EQ(State("pr"), "Ready");
  ASSERT_TRUE(Pause("pr").ok());
  st = Pause("pr");
  EXPECT_TRUE(st.ok()) << "pause of a Paused zone: " << st.error_message();
  EXPECT_EQ(State("pr"), "Paused");
  ASSERT_TRUE(Resume("pr").ok());
  EXPECT_EQ(State("pr"), "Ready");
  st = Resume("pr");
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(State("pr"), "Ready");
  // The CLI agrees: both exit 0.
  EXPECT_EQ(Cli({"zone", "resume", "pr"}).exit_code, 0);
  ASSERT_TRUE(Delete("pr", false).ok());
  // A zone that does not exist is still NOT_FOUND for both.
  EXPECT_EQ(Resume("pr").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Pause("pr").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TaskContractTest, HostnameIsTheZoneNameOrADerivedLabel) {
  for (const std::string& name :
       {std::string("plain-name"), std::string("my_zone.v2"), std::string(100, 'h')}) {
    spb::RunSandboxRequest req;
    req.set_name(name);
    auto r = Run({"/bin/sh", "-c", "cat /proc/sys/kernel/hostname; cat /etc/hostname"}, req);
    std::string want = ZoneHostname(name);
    EXPECT_EQ(r.stdout(), want + "\n" + want + "\n") << name << ": " << r.stderr();
    EXPECT_TRUE(IsHostnameLabel(want)) << want;
    ASSERT_TRUE(Delete(name, false).ok());
  }
  EXPECT_EQ(ZoneHostname("plain-name"), "plain-name");
}

TEST_F(TaskContractTest, ForceDeleteSaysSoInTheTasksError) {
  ASSERT_TRUE(CreateZone("doomed").ok());
  spb::SandboxResult result;
  grpc::Status status;
  std::thread runner([&] {
    spb::RunSandboxRequest req;
    req.set_name("doomed");
    result = Run({"/bin/sleep", "60"}, req, &status);
  });
  ASSERT_FALSE(daemon_->WaitForRunningTask().empty());
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(Delete("doomed", true).ok());
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(result.error().find("zone delete --force"), std::string::npos)
      << result.status() << ": " << result.error();
  EXPECT_NE(result.error().find("doomed"), std::string::npos) << result.error();
  EXPECT_NE(result.status(), "succeeded");
}

// A repo directory on the host that uid 12345 may write to.
std::string MakeRepo(Daemon& d, const std::string& name) {
  std::string repo = d.dir() + "/" + name;
  std::filesystem::create_directories(repo);
  EXPECT_EQ(::chown(repo.c_str(), 12345, 12345), 0);
  return repo;
}

// In the zone's own user namespace (the default) /workspace is idmapped: what any task user
// writes belongs to the repo's owner on the host. With [zone] userns = false, to the task's
// user itself (root's files to root).
TEST_F(TaskContractTest, UserOwnsWhatItWritesInWorkspace) {
  std::string repo = MakeRepo(*daemon_, "repo");
  for (bool userns : {true, false}) {
    SCOPED_TRACE(userns ? "userns" : "host ids");
    const std::string policy = userns ? "" : "[zone]\nuserns = false\n";
    const std::string tag = userns ? "-ns" : "-host";
    spb::RunSandboxRequest req;
    req.set_repo_path(repo);
    req.set_policy_toml(policy);
    req.set_uid(12345);
    req.set_gid(23456);
    auto r = Run({"/bin/sh", "-c",
                  "id -u; id -g; id -G; grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status; "
                  "echo x > /workspace/made-by-task" +
                      tag + "; mkdir /workspace/dir" + tag},
                 req);
    ASSERT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
    EXPECT_EQ(r.stdout(),
              "12345\n23456\n23456\n"
              "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n")
        << "the user, its group, no supplementary groups, no capabilities";
    struct stat st {};
    ASSERT_EQ(::stat((repo + "/made-by-task" + tag).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 12345u);
    EXPECT_EQ(st.st_gid, userns ? 12345u : 23456u) << "the repo owner's group, or the task's";
    ASSERT_EQ(::stat((repo + "/dir" + tag).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 12345u);

    // The default stays root, with the policy's capabilities.
    spb::RunSandboxRequest q;
    q.set_repo_path(repo);
    q.set_policy_toml(policy);
    auto root = Run({"/bin/sh", "-c", "id -u; touch /workspace/by-root" + tag}, q);
    EXPECT_EQ(root.stdout(), "0\n") << root.stderr();
    ASSERT_EQ(::stat((repo + "/by-root" + tag).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, userns ? 12345u : 0u) << "the repo owner, or the host's root";
  }

  // The CLI: UID alone means GID = UID.
  CliRun cli = Cli({"sandbox", "--user", "12345", "--repo-path", repo, "--", "/bin/sh", "-c",
                    "touch /workspace/from-cli; id -u; id -g"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err << cli.out;
  EXPECT_EQ(nlohmann::json::parse(cli.out)["stdout"], "12345\n12345\n") << cli.out;
  struct stat st {};
  ASSERT_EQ(::stat((repo + "/from-cli").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 12345u);
  EXPECT_EQ(st.st_gid, 12345u);
}

// Neither CAP_SETUID/CAP_SETGID (to become the user) nor CAP_KILL (for the task's init to pass
// the timeout's SIGTERM to the user's processes) comes from the policy.
TEST_F(TaskContractTest, UserNeedsNoCapabilityFromThePolicy) {
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("pids_max = 64", "", "none"));
  req.set_uid(12345);
  req.set_timeout_ms(500);
  req.set_kill_after_ms(20000);
  auto t0 = std::chrono::steady_clock::now();
  auto r = Run({"/bin/sh", "-c",
                "id -u; (trap 'echo child got TERM; exit 0' TERM; while :; do sleep 0.1; done) & "
                "trap '' TERM; wait; wait"},
               req);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status(), "timed_out") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout(), "12345\nchild got TERM\n") << r.stderr();
  EXPECT_LT(took, std::chrono::seconds(10)) << "SIGTERM reached the user's processes";
}

TEST_F(TaskContractTest, UserThatCannotBeIsRefused) {
  spb::RunSandboxRequest req;
  req.set_gid(5);
  grpc::Status st;
  Run({"/bin/true"}, req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  spb::RunSandboxRequest minus_one;
  minus_one.set_uid(UINT32_MAX);
  Run({"/bin/true"}, minus_one, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

TEST_F(TaskContractTest, StdinReachesTheTaskByteForByte) {
  std::string input = "line one\n\0\xff\xfe binary\nline three\n"s;
  spb::RunSandboxRequest req;
  req.set_stdin_data(input);
  auto r = Run({"/bin/cat"}, req);
  ASSERT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout_bytes(), input);

  // Without stdin the task reads /dev/null.
  auto empty = Run({"/bin/sh", "-c", "wc -c"});
  EXPECT_EQ(empty.stdout(), "0\n");

  // The CLI's -i passes its own stdin; without -i the same stdin stays with the CLI.
  std::string in_path = daemon_->dir() + "/stdin.txt";
  std::ofstream(in_path) << "alpha\nbeta\ngamma\n";
  CliRun with = Cli({"sandbox", "-i", "--", "/usr/bin/wc", "-l"}, in_path);
  ASSERT_EQ(with.exit_code, 0) << with.err;
  EXPECT_EQ(nlohmann::json::parse(with.out)["stdout"], "3\n");
  CliRun without = Cli({"sandbox", "--", "/usr/bin/wc", "-l"}, in_path);
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(nlohmann::json::parse(without.out)["stdout"], "0\n");

  // Over the bound: refused before anything runs.
  spb::RunSandboxRequest big;
  big.set_stdin_data(std::string((1 << 20) + 1, 'x'));
  grpc::Status st;
  Run({"/bin/cat"}, big, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

TEST_F(TaskContractTest, TimeoutSendsTermThenKillAfterTheGrace) {
  // Ignores SIGTERM (and so do its children): SIGKILL after the grace ends it.
  spb::RunSandboxRequest req;
  req.set_timeout_ms(500);
  req.set_kill_after_ms(1500);
  auto t0 = std::chrono::steady_clock::now();
  auto r = Run({"/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"}, req);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status(), "timed_out");
  ASSERT_TRUE(r.has_signal());
  EXPECT_EQ(r.signal(), 9);
  EXPECT_NE(r.error().find("SIGKILLed"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("0.5 s"), std::string::npos) << r.error();
  EXPECT_GE(took, std::chrono::milliseconds(1900)) << "SIGKILL came before the grace ended";
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(TaskContractTest, TimeoutTermReachesEveryProcessAndIsReported) {
  spb::RunSandboxRequest req;
  req.set_timeout_ms(500);
  req.set_kill_after_ms(20000);
  auto t0 = std::chrono::steady_clock::now();
  // A child of the workload traps SIGTERM and says so; the workload waits for it.
  auto r = Run({"/bin/sh", "-c",
                "(trap 'echo child got TERM; exit 0' TERM; while :; do sleep 0.1; done) & "
                "trap '' TERM; wait; wait"},
               req);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status(), "timed_out");
  EXPECT_EQ(r.stdout(), "child got TERM\n") << r.stderr();
  EXPECT_NE(r.error().find("ended within"), std::string::npos) << r.error();
  EXPECT_LT(took, std::chrono::seconds(10)) << "it ended on SIGTERM, not after the grace";

  // A plain command dies of the SIGTERM, and the result says which signal.
  auto plain = Run({"/bin/sleep", "30"}, req);
  EXPECT_EQ(plain.status(), "timed_out");
  ASSERT_TRUE(plain.has_signal());
  EXPECT_EQ(plain.signal(), 15);
}

TEST_F(TaskContractTest, FractionalTimeoutFromTheCli) {
  auto t0 = std::chrono::steady_clock::now();
  CliRun r = Cli({"sandbox", "--timeout", "0.5", "--", "/bin/sleep", "30"});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 124) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["status"], "timed_out");
  EXPECT_GE(j["duration_ms"].get<int>(), 450);
  EXPECT_LT(j["duration_ms"].get<int>(), 3000) << "0.5 s, not rounded up to 1 s";
  EXPECT_LT(took, std::chrono::seconds(8));
  // The public whole-second field still works on its own.
  spb::RunSandboxRequest req;
  req.set_timeout_seconds(1);
  auto pub = Run({"/bin/sleep", "30"}, req);
  EXPECT_EQ(pub.status(), "timed_out");
  EXPECT_GE(pub.duration_ms(), 900u);
}

TEST_F(TaskContractTest, NonUtf8OutputSurvivesByteExact) {
  const std::string bytes = "ok \xff\xfe\x80 end\n\0tail"s;
  auto r = Run({"/usr/bin/printf", "ok \\377\\376\\200 end\\n\\000tail"});
  ASSERT_EQ(r.status(), "succeeded") << r.error() << r.stderr();
  EXPECT_EQ(r.stdout_bytes(), bytes);
  EXPECT_EQ(r.stdout(), "ok \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end\n\0tail"s)
      << "the string field holds valid UTF-8";
  // Valid UTF-8 is exact in the string field, and the bytes field stays empty.
  auto text = Run({"/bin/echo", "ünïcødé"});
  EXPECT_EQ(text.stdout(), "ünïcødé\n");
  EXPECT_TRUE(text.stdout_bytes().empty());

  CliRun cli = Cli({"sandbox", "--", "/usr/bin/printf", "\\377\\376 x"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto j = nlohmann::json::parse(cli.out);
  EXPECT_EQ(j["stdout_base64"], "//4geA==") << cli.out;  // base64 of ff fe 20 78
  EXPECT_EQ(j["stdout"], "\xEF\xBF\xBD\xEF\xBF\xBD x");
}

TEST_F(TaskContractTest, OutputDirGetsFiftyMebibytesWhileTheResultKeepsTheHead) {
  constexpr size_t kTotal = 50u << 20;
  std::string dir = daemon_->dir() + "/out";  // the CLI makes it
  CliRun r = Cli({"sandbox", "--output-dir", dir, "--output-limit", "64Ki", "--", "/bin/sh", "-c",
                  "yes 0123456789abcdef | head -c 52428800; echo done >&2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string line = "0123456789abcdef\n";
  std::string want;
  want.reserve(kTotal + line.size());
  while (want.size() < kTotal) want += line;
  want.resize(kTotal);
  std::string got = Slurp(dir + "/stdout");
  EXPECT_EQ(got.size(), kTotal);
  EXPECT_TRUE(got == want) << "the file holds the complete stdout";
  EXPECT_EQ(Slurp(dir + "/stderr"), "done\n");
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["stdout"].get<std::string>(), want.substr(0, 64 << 10));
  EXPECT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(j["stderr"], "done\n");
  // A directory that does not exist on rauhad's host is refused before anything runs.
  spb::RunSandboxRequest req;
  req.set_output_dir(daemon_->dir() + "/missing");
  grpc::Status st;
  Run({"/bin/true"}, req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_NE(st.error_message().find("output_dir"), std::string::npos) << st.error_message();
  // The shim writes these files as root with content the task chose: never where a file
  // means something to the host (cron would run /etc/cron.d/stdout), never via a symlink.
  std::filesystem::create_directory_symlink(dir, daemon_->dir() + "/out-link");
  for (const std::string& bad : {std::string("/etc/cron.d"), std::string("/etc"),
                                 daemon_->dir() + "/out-link", daemon_->dir() + "/run"}) {
    req.set_output_dir(bad);
    Run({"/bin/echo", "* * * * * root touch /tmp/rauha-pwned"}, req, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad << st.error_message();
  }
  EXPECT_FALSE(std::filesystem::exists("/etc/cron.d/stdout"));
  EXPECT_FALSE(std::filesystem::exists("/etc/stdout"));
}

TEST_F(TaskContractTest, OutOfRangeFlagsAreUsageErrors) {
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{{"--output-limit", "2Mi"},
                                             {"--output-limit", "0"},
                                             {"--output-limit", "lots"},
                                             {"--timeout", "-1"},
                                             {"--timeout", "soon"},
                                             {"--timeout", "nan"},
                                             {"--kill-after", "1e99"},
                                             {"--user", "a:b"},
                                             {"--user", "4294967295"}}) {
    std::vector<std::string> args = {"sandbox"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {"--", "/bin/true"});
    CliRun r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << " " << flags[1] << ": " << r.err;
    EXPECT_NE(r.err.find(flags[0]), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // The bounds themselves are accepted, and help states them.
  EXPECT_EQ(Cli({"sandbox", "--output-limit", "1Mi", "--", "/bin/true"}).exit_code, 0);
  EXPECT_EQ(Cli({"sandbox", "--output-limit", "1", "--", "/bin/true"}).exit_code, 0);
  CliRun help = Cli({"sandbox", "--help"});
  EXPECT_NE(help.out.find("1 to 1Mi"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace rauha::testing
