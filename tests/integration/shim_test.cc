// rauha-shim against the real kernel: each test starts its own shim (private state dir and
// socket under a fresh /tmp/rauha-shimtest-XXXXXX), talks the shim protocol to it, and checks
// on teardown that the shim exited and left no mount, process or file behind.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rauha-common/fd.h"
#include "rauha-common/frame.h"
#include "rauha-common/shim_protocol.h"
#include "tests/integration/leaf_cgroups.h"

namespace rauha::shim {
namespace {

using nlohmann::json;
using ::rauha::testing::LeafCgroups;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kZoneName[] = "shimtest-zone";
constexpr char kPath[] = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

bool RequireAll() {
  const char* v = std::getenv("RAUHA_TEST_REQUIRE_ALL");
  return v != nullptr && std::string(v) == "1";
}

#define SKIP_OR_FAIL(reason)            \
  do {                                  \
    if (RequireAll()) FAIL() << reason; \
    GTEST_SKIP() << reason;             \
  } while (0)

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

UniqueFd Connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) return UniqueFd();
  return fd;
}

// True when the peer closes `fd` within `timeout_ms` (read returns 0 or an error).
bool ClosedByPeer(int fd, int timeout_ms) {
  int64_t deadline = NowMs() + timeout_ms;
  while (NowMs() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(deadline - NowMs())) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return true;
  }
  return false;
}

// Event frames (a "wait" connection's live denials) that arrive before the response are
// appended to `events` when given, else skipped.
absl::StatusOr<json> Call(int fd, const std::string& method, json params = json::object(),
                          int timeout_ms = 30000, std::vector<json>* events = nullptr) {
  static uint64_t next_id = 1;
  uint64_t id = next_id++;
  if (auto s = frame::WriteFrame(fd, MakeRequest(id, method, std::move(params))); !s.ok()) {
    return s;
  }
  auto response = frame::ReadFrame(fd, timeout_ms);
  while (response.ok() && IsEventFrame(*response)) {
    if (events != nullptr) events->push_back(*response);
    response = frame::ReadFrame(fd, timeout_ms);
  }
  if (!response.ok()) return response.status();
  if (response->value("id", uint64_t{0}) != id) {
    return absl::InternalError("response id does not match the request");
  }
  return ParseResponse(*response);
}

TaskSpec Spec(const std::string& id, std::vector<std::string> argv) {
  TaskSpec spec;
  spec.task_id = id;
  spec.argv = std::move(argv);
  spec.env = {kPath};
  spec.devices = {"/dev/null", "/dev/zero", "/dev/urandom"};
  spec.writable_paths = {"/tmp"};
  return spec;
}

TaskSpec Shell(const std::string& id, const std::string& script) {
  return Spec(id, {"sh", "-c", script});
}

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) SKIP_OR_FAIL("rauha-shim needs root (namespaces, mounts)");
    char tmpl[] = "/tmp/rauha-shimtest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    socket_ = dir_ + "/shim.sock";
    state_ = dir_ + "/state";
    log_ = dir_ + "/shim.log";
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    std::vector<std::string> args = {RAUHA_SHIM_BIN, "--zone-id",  "zone-1",   "--zone-name",
                                     kZoneName,      "--socket",   socket_,    "--state-dir",
                                     state_,         "--network",  "isolated", "--log",
                                     log_,           "--ready-fd", "3"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::dup2(ready[1], 3);  // without O_CLOEXEC: the shim writes "ready" here
      ::execv(RAUHA_SHIM_BIN, argv.data());
      ::_exit(127);
    }
    ::close(ready[1]);
    UniqueFd ready_read(ready[0]);
    std::string line;
    int64_t deadline = NowMs() + 10000;
    while (line.find('\n') == std::string::npos && NowMs() < deadline) {
      pollfd p{ready_read.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(deadline - NowMs())) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(ready_read.get(), buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ASSERT_EQ(line, "ready " + std::to_string(pid_) + "\n") << ReadFile(log_);
    conn_ = Connect(socket_);
    ASSERT_TRUE(conn_) << "connect " << socket_ << ": " << std::strerror(errno);
  }

  void TearDown() override {
    if (pid_ > 0) {
      UniqueFd c = Connect(socket_);
      if (c) {
        auto r = Call(c.get(), "shutdown", json::object(), 15000);
        EXPECT_TRUE(r.ok()) << r.status();
      }
      int status = 0;
      int64_t deadline = NowMs() + 15000;
      pid_t r = 0;
      while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && NowMs() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (r == 0) {
        ADD_FAILURE() << "shim " << pid_ << " did not exit after shutdown; killing it";
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "shim status " << status;
      }
    }
    if (dir_.empty()) return;
    if (HasFailure()) std::cerr << "--- shim log ---\n" << ReadFile(log_) << "---\n";
    EXPECT_THAT(ReadFile("/proc/self/mountinfo"), Not(HasSubstr(dir_))) << "mount left behind";
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
      EXPECT_THAT(cmdline, Not(HasSubstr(dir_))) << "process " << name << " left behind";
    }
    EXPECT_FALSE(std::filesystem::exists(socket_)) << "socket left behind";
    EXPECT_FALSE(std::filesystem::exists(state_)) << "state dir left behind";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  absl::StatusOr<json> Call(const std::string& method, json params = json::object()) {
    return shim::Call(conn_.get(), method, std::move(params));
  }
  absl::StatusOr<json> Call(int fd, const std::string& method, json params = json::object(),
                            int timeout_ms = 30000) {
    return shim::Call(fd, method, std::move(params), timeout_ms);
  }

  absl::StatusOr<TaskResult> Wait(const std::string& id, std::vector<json>* events = nullptr) {
    auto r = shim::Call(conn_.get(), "wait", {{"task_id", id}}, 30000, events);
    if (!r.ok()) return r.status();
    return TaskResultFromJson(*r);
  }

  absl::StatusOr<TaskResult> Run(const TaskSpec& spec) {
    auto started = Call("start", ToJson(spec));
    if (!started.ok()) return started.status();
    return Wait(spec.task_id);
  }

  std::string dir_, socket_, state_, log_;
  pid_t pid_ = -1;
  UniqueFd conn_;
};

#define ASSERT_OK_AND_ASSIGN(lhs, expr)            \
  auto lhs##_or = (expr);                          \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

TEST_F(ShimTest, EchoStdoutStderrAndExitCode) {
  ASSERT_OK_AND_ASSIGN(r, Run(Shell("t1", "echo out; echo err >&2; exit 3")));
  EXPECT_EQ(r.stdout_data, "out\n");
  EXPECT_EQ(r.stderr_data, "err\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.signal.has_value());
  EXPECT_EQ(r.start_error, "");
  EXPECT_GT(r.pid, 0);
  EXPECT_GE(r.finished_at_ns, r.started_at_ns);
  EXPECT_GT(r.max_rss_kb, 0u);
}

TEST_F(ShimTest, SignalIsReported) {
  ASSERT_OK_AND_ASSIGN(r, Run(Spec("seg", {"perl", "-e", "unpack q(p), pack q(J), 8"})));
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_FALSE(r.killed);
}

TEST_F(ShimTest, TimeoutKillsTask) {
  TaskSpec spec = Spec("slow", {"sleep", "30"});
  spec.timeout_ms = 300;
  int64_t start = NowMs();
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_LT(NowMs() - start, 5000);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_GE(r.finished_at_ns - r.started_at_ns, 250'000'000);
}

TEST_F(ShimTest, EnvAndWorkdir) {
  TaskSpec spec = Shell("env", "echo \"K=$K\"; pwd; echo \"HOME=${HOME-unset}\"");
  spec.env = {kPath, "K=V with spaces"};
  spec.workdir = "/usr/share";
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.stdout_data, "K=V with spaces\n/usr/share\nHOME=unset\n");

  TaskSpec missing = Spec("nowd", {"true"});
  missing.workdir = "/no/such/dir";
  ASSERT_OK_AND_ASSIGN(m, Run(missing));
  EXPECT_EQ(m.start_error, "workdir /no/such/dir: No such file or directory");
  EXPECT_FALSE(m.exit_code.has_value());
}

TEST_F(ShimTest, MissingCommandIsStartError) {
  ASSERT_OK_AND_ASSIGN(r, Run(Spec("missing", {"/nonexistent"})));
  EXPECT_THAT(r.start_error, HasSubstr("/nonexistent"));
  EXPECT_THAT(r.start_error, HasSubstr("No such file or directory"));
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_FALSE(r.signal.has_value());

  ASSERT_OK_AND_ASSIGN(p, Run(Spec("missing2", {"rauha-no-such-command"})));
  EXPECT_THAT(p.start_error, HasSubstr("exec rauha-no-such-command: No such file or directory"));
}

TEST_F(ShimTest, RepoMountIsWritableAndPersists) {
  std::string repo = dir_ + "/repo";
  ASSERT_EQ(::mkdir(repo.c_str(), 0755), 0);
  std::ofstream(repo + "/README") << "hello repo\n";
  TaskSpec spec = Shell("repo", "cat /workspace/README; echo written > /workspace/out.txt");
  spec.mounts = {{repo, "/workspace", false}};
  spec.workdir = "/workspace";
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data << r.start_error;
  EXPECT_EQ(r.stdout_data, "hello repo\n");
  EXPECT_EQ(ReadFile(repo + "/out.txt"), "written\n");

  TaskSpec ro = Shell("repo-ro", "echo x > /src/ro.txt");
  ro.mounts = {{repo, "/src", true}};
  ASSERT_OK_AND_ASSIGN(r2, Run(ro));
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_THAT(r2.stderr_data, HasSubstr("Read-only file system"));
  EXPECT_FALSE(std::filesystem::exists(repo + "/ro.txt"));
}

// rauhad pins the repo it checked by (dev, ino): the shim mounts that directory or nothing,
// so replacing the path (by a symlink or another directory) after the check gains nothing.
TEST_F(ShimTest, PinnedMountIsOnlyTheCheckedDirectory) {
  std::string repo = dir_ + "/repo", other = dir_ + "/other";
  ASSERT_EQ(::mkdir(repo.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(other.c_str(), 0755), 0);
  std::ofstream(repo + "/README") << "checked\n";
  struct stat st;
  ASSERT_EQ(::stat(repo.c_str(), &st), 0);
  int starts = 0;
  auto pinned = [&](const std::string& source) {
    TaskSpec spec = Shell("pin-" + std::to_string(++starts), "cat /workspace/README");
    spec.mounts = {{source, "/workspace", false, st.st_dev, st.st_ino}};
    return spec;
  };
  ASSERT_OK_AND_ASSIGN(r, Run(pinned(repo)));
  EXPECT_EQ(r.stdout_data, "checked\n") << r.start_error << r.stderr_data;

  auto swapped = Call("start", ToJson(pinned(other)));
  ASSERT_FALSE(swapped.ok());
  EXPECT_THAT(swapped.status().message(), HasSubstr("was replaced"));

  ASSERT_EQ(::symlink(repo.c_str(), (dir_ + "/link").c_str()), 0);
  auto via_link = Call("start", ToJson(pinned(dir_ + "/link")));
  ASSERT_FALSE(via_link.ok());
  EXPECT_THAT(via_link.status().message(), HasSubstr("symlink"));
}

TEST_F(ShimTest, HostSecretsInvisible) {
  std::string marker = dir_ + "/host-tmp-marker";
  std::ofstream(marker) << "secret";
  std::string script =
      "for p in /etc/shadow /etc/gshadow /etc/sudoers /etc/ssh /etc/machine-id /etc/ssl/private "
      "/root /home /var /run /sys/kernel " +
      marker + " " + dir_ +
      "; do "
      "[ -e \"$p\" ] && echo \"visible $p\"; done; "
      "echo procs=$(ls /proc | grep -c '^[0-9]'); "
      "tr '\\0' ' ' < /proc/1/cmdline >&2; "
      "touch /usr/x 2>/dev/null && echo usr-writable; "
      "touch /x 2>/dev/null && echo root-writable; "
      "echo >> /etc/passwd 2>/dev/null && echo passwd-writable; "
      "echo t > /tmp/y && echo tmp-ok";
  ASSERT_OK_AND_ASSIGN(r, Run(Shell("secrets", script)));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("visible")));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("writable")));
  EXPECT_THAT(r.stdout_data, HasSubstr("tmp-ok"));
  // The init (PID 1), sh, the command substitution subshell, ls and grep: a handful, not the
  // host's.
  auto pos = r.stdout_data.find("procs=");
  ASSERT_NE(pos, std::string::npos) << r.stdout_data;
  EXPECT_LE(std::stoi(r.stdout_data.substr(pos + 6)), 6) << r.stdout_data;
  std::string host_init = ReadFile("/proc/1/cmdline");
  std::replace(host_init.begin(), host_init.end(), '\0', ' ');
  EXPECT_THAT(r.stderr_data, ::testing::StartsWith("rauha-init"));
  EXPECT_THAT(r.stderr_data, Not(HasSubstr(host_init)));
  EXPECT_FALSE(std::filesystem::exists("/usr/x"));
}

TEST_F(ShimTest, CapabilitiesDropped) {
  const std::string script =
      "mount -t tmpfs x /tmp 2>/dev/null && echo mounted; "
      "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status";
  ASSERT_OK_AND_ASSIGN(none, Run(Shell("nocaps", script)));
  EXPECT_EQ(none.stdout_data,
            "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\n");

  TaskSpec chown = Shell("chown", script);
  chown.capabilities = {"CAP_CHOWN"};
  ASSERT_OK_AND_ASSIGN(one, Run(chown));
  EXPECT_EQ(one.stdout_data,
            "CapEff:\t0000000000000001\nCapBnd:\t0000000000000001\nNoNewPrivs:\t1\n");

  TaskSpec bad = Shell("badcap", "true");
  bad.capabilities = {"CAP_NOT_A_THING"};
  auto r = Call("start", ToJson(bad));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
}

TEST_F(ShimTest, RlimitApplied) {
  TaskSpec spec = Shell("nofile", "ulimit -n");
  spec.rlimits = {{"RLIMIT_NOFILE", 64, 64}};
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.stdout_data, "64\n");

  TaskSpec bad = Shell("badrlimit", "true");
  bad.rlimits = {{"RLIMIT_BOGUS", 1, 1}};
  auto s = Call("start", ToJson(bad));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
}

TEST_F(ShimTest, DevicesFromPolicy) {
  std::string host_dev;
  for (const char* d : {"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/kmsg", "/dev/mem"}) {
    if (std::filesystem::exists(d)) {
      host_dev = d;
      break;
    }
  }
  ASSERT_FALSE(host_dev.empty()) << "no well-known device on this host to check against";
  TaskSpec spec = Shell("dev",
                        "echo x > /dev/null && echo null-ok; "
                        "[ -e /dev/zero ] && echo zero-visible; "
                        "[ -e " +
                            host_dev +
                            " ] && echo host-device-visible; "
                            "mknod /dev/evil c 1 1 2>/dev/null && echo mknod-ok; echo done");
  spec.devices = {"/dev/null", "/dev/rauha-no-such-device"};
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.stdout_data, "null-ok\ndone\n");
  EXPECT_THAT(r.warnings,
              ::testing::ElementsAre(
                  "device /dev/rauha-no-such-device does not exist on this host; skipped"));
}

TEST_F(ShimTest, HostnameIsZoneName) {
  ASSERT_OK_AND_ASSIGN(r, Run(Shell("host", "hostname; cat /etc/hostname")));
  EXPECT_EQ(r.stdout_data, std::string(kZoneName) + "\n" + kZoneName + "\n");
}

TEST_F(ShimTest, NetworkIsolated) {
  ASSERT_OK_AND_ASSIGN(r, Run(Spec("net", {"cat", "/proc/net/dev"})));
  std::set<std::string> interfaces;
  std::istringstream lines(r.stdout_data);
  for (std::string line; std::getline(lines, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    interfaces.insert(name);
  }
  EXPECT_EQ(interfaces, std::set<std::string>{"lo"}) << r.stdout_data;
}

TEST_F(ShimTest, OutputIsBounded) {
  TaskSpec spec = Shell("yes", "yes | head -c 5000000");
  spec.output_limit = 1000;
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data.size(), 1000u);
  EXPECT_EQ(r.stdout_data.substr(0, 4), "y\ny\n");
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_FALSE(r.stderr_truncated);
}

TEST_F(ShimTest, WritablePathsAreDiscardedScratch) {
  TaskSpec spec = Shell("scratch",
                        "echo a > /var/tmp/f && echo vartmp-ok; "
                        "ls /usr/local/bin > /dev/null && echo usrlocal-visible; "
                        "touch /usr/local/rauha-shimtest-file && echo usrlocal-writable; "
                        "touch /usr/bin/x 2>/dev/null && echo usrbin-writable; echo done");
  spec.writable_paths = {"/tmp", "/var/tmp", "/usr/local"};
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.stdout_data, "vartmp-ok\nusrlocal-visible\nusrlocal-writable\ndone\n")
      << r.stderr_data << r.start_error;
  EXPECT_FALSE(std::filesystem::exists("/usr/local/rauha-shimtest-file"));

  TaskSpec root = Shell("rootrw", "touch /x && touch /usr/rauha-shimtest-y && echo ok");
  root.writable_paths = {"/"};
  ASSERT_OK_AND_ASSIGN(r2, Run(root));
  EXPECT_EQ(r2.stdout_data, "ok\n") << r2.stderr_data << r2.start_error;
  EXPECT_FALSE(std::filesystem::exists("/usr/rauha-shimtest-y"));

  TaskSpec etc = Shell("etcrw", "true");
  etc.writable_paths = {"/etc"};
  EXPECT_EQ(Call("start", ToJson(etc)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ShimTest, JoinsCgroupsBeforeExec) {
  LeafCgroups cgroups("rauha-shimtest");
  if (!cgroups.available()) {
    SKIP_OR_FAIL("needs a v1 pids hierarchy and cgroup v2 at /sys/fs/cgroup/unified");
  }
  ASSERT_NO_FATAL_FAILURE(cgroups.Make());
  const std::string &v1 = cgroups.v1(), &v2 = cgroups.v2();
  std::ofstream(v1 + "/pids.max") << "7";
  TaskSpec spec = Shell("cg",
                        "cat /proc/self/cgroup; "
                        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; "
                        "echo forks-done");
  spec.cgroup_v1 = {v1};
  spec.cgroup_v2 = v2;
  auto r = Run(spec);
  cgroups.Remove();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->stdout_data, HasSubstr(":pids:" + cgroups.rel_v1() + "\n"));
  EXPECT_THAT(r->stdout_data, HasSubstr("0::" + cgroups.rel_v2() + "\n"));
  // pids.max 7 holds: not all ten background sleeps could be forked.
  EXPECT_THAT(r->stderr_data + r->stdout_data,
              ::testing::AnyOf(HasSubstr("fork"), HasSubstr("Resource")))
      << r->stdout_data << r->stderr_data;
}

// "prepare" (the warm pool's task process made ahead, rauha-shim/prepared_task.h): the process
// joins the given cgroups at once and serves the next start in exactly those cgroups; a start
// in other cgroups gets a fresh clone and the prepared process is killed, never reused.
TEST_F(ShimTest, PreparedTaskServesOnlyAStartInItsCgroups) {
  LeafCgroups cgroups("rauha-shimtest-prep");
  if (!cgroups.available()) {
    SKIP_OR_FAIL("needs a v1 pids hierarchy and cgroup v2 at /sys/fs/cgroup/unified");
  }
  ASSERT_NO_FATAL_FAILURE(cgroups.Make());
  const std::string &v1 = cgroups.v1(), &v2 = cgroups.v2();
  auto procs = [](const std::string& dir) { return ReadFile(dir + "/cgroup.procs"); };
  const json params = {{"cgroup_v2", v2}, {"cgroup_v1", {v1}}};

  // Made, in both cgroups, a child of the shim.
  ASSERT_OK_AND_ASSIGN(first, Call("prepare", params));
  const int64_t unfit_pid = first["pid"].get<int64_t>();
  EXPECT_EQ(procs(v1), std::to_string(unfit_pid) + "\n");
  EXPECT_EQ(procs(v2), std::to_string(unfit_pid) + "\n");
  EXPECT_THAT(ReadFile("/proc/" + std::to_string(unfit_pid) + "/status"),
              HasSubstr("\nPPid:\t" + std::to_string(pid_) + "\n"));
  // A start without those cgroups: a clone of its own; the prepared process is gone with it.
  ASSERT_OK_AND_ASSIGN(other, Call("start", ToJson(Shell("unfit", "cat /proc/self/cgroup"))));
  EXPECT_NE(other["pid"].get<int64_t>(), unfit_pid);
  EXPECT_EQ(procs(v1), "") << "the unused prepared process is still in its cgroup";
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(unfit_pid)));
  ASSERT_OK_AND_ASSIGN(unfit, Wait("unfit"));
  EXPECT_THAT(unfit.stdout_data, Not(HasSubstr(cgroups.leaf())));

  // A start in its cgroups is that process.
  ASSERT_OK_AND_ASSIGN(second, Call("prepare", params));
  const int64_t fit_pid = second["pid"].get<int64_t>();
  TaskSpec spec = Shell("fit", "cat /proc/self/cgroup; echo $$");
  spec.cgroup_v1 = {v1};
  spec.cgroup_v2 = v2;
  ASSERT_OK_AND_ASSIGN(started, Call("start", ToJson(spec)));
  EXPECT_EQ(started["pid"].get<int64_t>(), fit_pid);
  ASSERT_OK_AND_ASSIGN(fit, Wait("fit"));
  EXPECT_EQ(fit.exit_code, 0) << fit.stderr_data;
  EXPECT_THAT(fit.stdout_data, HasSubstr(":pids:" + cgroups.rel_v1() + "\n"));
  EXPECT_THAT(fit.stdout_data, HasSubstr("0::" + cgroups.rel_v2() + "\n"));
  // The workload is pid 2 of the prepared process's pid namespace.
  EXPECT_THAT(fit.stdout_data, ::testing::EndsWith("\n2\n"));

  // Bad input: a clear error, and no process is left waiting.
  auto missing = Call("prepare", {{"cgroup_v2", v2}});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status())) << missing.status();
  auto nowhere = Call("prepare", {{"cgroup_v2", v2}, {"cgroup_v1", {v1 + "-missing"}}});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_THAT(std::string(nowhere.status().message()), HasSubstr(v1 + "-missing/cgroup.procs"));
  EXPECT_EQ(procs(v2), "") << "a prepared process that failed is still in its cgroup";
}

// "prepare" with "seccomp_deny" compiles that list's filter ahead (in the shim, before the
// prepared process is cloned). The task still gets the filter of its own TaskSpec: the list it
// was prepared for is enforced, and a task with another list gets that one's.
TEST_F(ShimTest, PreparedTaskGetsTheFilterOfItsOwnDenyList) {
  LeafCgroups cgroups("rauha-shimtest-prepsec");
  if (!cgroups.available()) {
    SKIP_OR_FAIL("needs a v1 pids hierarchy and cgroup v2 at /sys/fs/cgroup/unified");
  }
  ASSERT_NO_FATAL_FAILURE(cgroups.Make());
  const std::string &v1 = cgroups.v1(), &v2 = cgroups.v2();
  const std::vector<std::string> no_chmod = {"chmod", "fchmodat"};
  const json params = {{"cgroup_v2", v2}, {"cgroup_v1", {v1}}, {"seccomp_deny", no_chmod}};
  auto chmod_task = [&](const std::string& id, std::vector<std::string> deny) {
    TaskSpec spec = Shell(id, "echo x > /tmp/x && chmod 600 /tmp/x && stat -c %a /tmp/x");
    spec.cgroup_v1 = {v1};
    spec.cgroup_v2 = v2;
    spec.seccomp_deny = std::move(deny);
    return spec;
  };

  // Prepared for the list, started with it: served by the prepared process, chmod refused.
  ASSERT_OK_AND_ASSIGN(first, Call("prepare", params));
  ASSERT_OK_AND_ASSIGN(started, Call("start", ToJson(chmod_task("denied", no_chmod))));
  EXPECT_EQ(started["pid"].get<int64_t>(), first["pid"].get<int64_t>());
  ASSERT_OK_AND_ASSIGN(denied, Wait("denied"));
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.stderr_data, HasSubstr("Operation not permitted"));
  EXPECT_EQ(denied.stdout_data, "");

  // Prepared for the list, started without it: the task's own (default) filter allows chmod.
  ASSERT_OK_AND_ASSIGN(second, Call("prepare", params));
  ASSERT_OK_AND_ASSIGN(again, Call("start", ToJson(chmod_task("allowed", {}))));
  EXPECT_EQ(again["pid"].get<int64_t>(), second["pid"].get<int64_t>());
  ASSERT_OK_AND_ASSIGN(allowed, Wait("allowed"));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.stderr_data;
  EXPECT_EQ(allowed.stdout_data, "600\n") << allowed.stderr_data;

  // Bad input: a clear error, and no process is left waiting.
  auto not_a_list = Call("prepare", {{"cgroup_v2", v2}, {"cgroup_v1", {v1}}, {"seccomp_deny", 7}});
  ASSERT_FALSE(not_a_list.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(not_a_list.status())) << not_a_list.status();
  EXPECT_EQ(ReadFile(v1 + "/cgroup.procs"), "");
  EXPECT_EQ(ReadFile(v2 + "/cgroup.procs"), "");
}

// "prepare" with "root" (the zone policy's writable paths and devices): the prepared process
// builds the task's root ahead in a mount namespace of its own (rauha-shim/root_ahead.h). A
// start whose root is that one runs in it, with the call's mounts attached from trees the shim
// makes at the call (so a mount made on the host after "prepare" shows), with their flags; a
// start whose root differs (another writable path) is still that process, in a root built
// the ordinary way.
TEST_F(ShimTest, PreparedRootServesItsTaskWithTheMountsOfTheCall) {
  LeafCgroups cgroups("rauha-shimtest-prepro");
  if (!cgroups.available()) {
    SKIP_OR_FAIL("needs a v1 pids hierarchy and cgroup v2 at /sys/fs/cgroup/unified");
  }
  ASSERT_NO_FATAL_FAILURE(cgroups.Make());
  const std::string &v1 = cgroups.v1(), &v2 = cgroups.v2();
  struct Unmount {  // before the cgroups are removed
    std::string mount;
    ~Unmount() {
      if (!mount.empty()) ::umount2(mount.c_str(), MNT_DETACH);
    }
  } cleanup;
  const TaskSpec base = Spec("base", {"true"});
  const json params = {
      {"cgroup_v2", v2},
      {"cgroup_v1", {v1}},
      {"root", {{"writable_paths", base.writable_paths}, {"devices", base.devices}}}};
  auto mounts_of = [](int64_t pid) {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/mnt", ec).string();
  };

  ASSERT_OK_AND_ASSIGN(first, Call("prepare", params));
  const int64_t pid = first["pid"].get<int64_t>();
  const std::string prepared_mounts = mounts_of(pid);
  EXPECT_NE(prepared_mounts, mounts_of(pid_)) << "no mount namespace of its own";
  const std::string root = "/proc/" + std::to_string(pid) + "/root";
  EXPECT_TRUE(std::filesystem::exists(root + "/etc/passwd")) << "no curated /etc in its root";
  EXPECT_FALSE(std::filesystem::exists(root + "/etc/shadow")) << "its root is the host's";
  EXPECT_TRUE(std::filesystem::exists(root + "/dev/null"));

  // After "prepare": a tmpfs mounted on the repo's directory, and a second directory.
  const std::string repo = dir_ + "/repo", data = dir_ + "/data";
  ASSERT_EQ(::mkdir(repo.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  ASSERT_EQ(::mount("tmpfs", repo.c_str(), "tmpfs", 0, "size=1m,mode=0755"), 0)
      << std::strerror(errno);
  cleanup.mount = repo;
  std::ofstream(repo + "/marker") << "mounted after prepare\n";
  std::ofstream(data + "/file") << "data\n";
  struct stat repo_st {};
  ASSERT_EQ(::stat(repo.c_str(), &repo_st), 0);
  TaskSpec spec = Shell("ahead",
                        "readlink /proc/self/ns/mnt; cat /workspace/marker; "
                        "echo w > /workspace/written && echo wrote; cat /data/file; "
                        "touch /data/x 2>&1; touch /new-in-root 2>&1; "
                        "grep -E ' /(workspace|data) ' /proc/self/mountinfo");
  spec.cgroup_v1 = {v1};
  spec.cgroup_v2 = v2;
  spec.mounts = {{repo, "/workspace", false, repo_st.st_dev, repo_st.st_ino},
                 {data, "/data", true}};
  ASSERT_OK_AND_ASSIGN(started, Call("start", ToJson(spec)));
  EXPECT_EQ(started["pid"].get<int64_t>(), pid) << "not served by the prepared process";
  ASSERT_OK_AND_ASSIGN(ahead, Wait("ahead"));
  EXPECT_EQ(ahead.exit_code, 0) << ahead.stderr_data;
  std::istringstream out(ahead.stdout_data);
  std::vector<std::string> lines;
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 8u) << ahead.stdout_data << ahead.stderr_data;
  EXPECT_EQ(lines[0], prepared_mounts) << "not the root built ahead";
  EXPECT_EQ(lines[1], "mounted after prepare");
  EXPECT_EQ(lines[2], "wrote");
  EXPECT_EQ(ReadFile(repo + "/written"), "w\n");
  EXPECT_EQ(lines[3], "data");
  EXPECT_THAT(lines[4], HasSubstr("/data/x"));
  EXPECT_THAT(lines[4], HasSubstr("Read-only file system"));
  EXPECT_THAT(lines[5], HasSubstr("/new-in-root"));
  EXPECT_THAT(lines[5], HasSubstr("Read-only file system"));
  std::string workspace = lines[6].find(" /workspace ") != std::string::npos ? lines[6] : lines[7];
  std::string data_line = lines[6].find(" /data ") != std::string::npos ? lines[6] : lines[7];
  EXPECT_THAT(workspace, HasSubstr(" rw,nosuid,nodev"));
  EXPECT_THAT(data_line, HasSubstr(" ro,nosuid,nodev"));
  for (const auto& line : {workspace, data_line}) {
    EXPECT_THAT(line, Not(HasSubstr("shared:")));
    EXPECT_THAT(line, Not(HasSubstr("master:")));
  }

  // Another writable path: another root (the one built ahead has no /scratch, and its "/" is
  // read-only). The same process, in a root built at the start.
  ASSERT_OK_AND_ASSIGN(second, Call("prepare", params));
  const int64_t second_pid = second["pid"].get<int64_t>();
  TaskSpec other = Shell("other", "touch /scratch/x && echo scratch; cat /workspace/marker");
  other.cgroup_v1 = {v1};
  other.cgroup_v2 = v2;
  other.writable_paths = {"/tmp", "/scratch"};
  other.mounts = {{repo, "/workspace", true}};
  ASSERT_OK_AND_ASSIGN(other_started, Call("start", ToJson(other)));
  EXPECT_EQ(other_started["pid"].get<int64_t>(), second_pid);
  ASSERT_OK_AND_ASSIGN(rebuilt, Wait("other"));
  EXPECT_EQ(rebuilt.exit_code, 0) << rebuilt.stderr_data;
  EXPECT_EQ(rebuilt.stdout_data, "scratch\nmounted after prepare\n") << rebuilt.stderr_data;

  // Bad input: a clear error, and no process is left waiting.
  auto bad = Call("prepare", {{"cgroup_v2", v2}, {"cgroup_v1", {v1}}, {"root", 7}});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  auto bad_path =
      Call("prepare",
           {{"cgroup_v2", v2}, {"cgroup_v1", {v1}}, {"root", {{"writable_paths", {"relative"}}}}});
  ASSERT_FALSE(bad_path.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad_path.status())) << bad_path.status();
  EXPECT_EQ(ReadFile(v1 + "/cgroup.procs"), "");
  EXPECT_EQ(ReadFile(v2 + "/cgroup.procs"), "");
}

// The kept output is spooled to rauhad's spool dir as it arrives (for a shim that dies), one
// file per stream, made with the stream's first output: a stream the task leaves empty has no
// file at all (rauhad reads none as empty), and the shim removes what it made.
TEST_F(ShimTest, OutputSpoolHasAFileOnlyForAStreamWithOutput) {
  const std::string spool_dir = dir_ + "/spool";
  ASSERT_EQ(::mkdir(spool_dir.c_str(), 0700), 0) << std::strerror(errno);
  TaskSpec spec = Shell("spooled", "echo spool-marker-4242; exec sleep 60");
  spec.output_spool_dir = spool_dir;
  ASSERT_TRUE(Call("start", ToJson(spec)).ok());
  const std::string out = TaskOutputSpoolPath(spool_dir, "spooled", false);
  const std::string err = TaskOutputSpoolPath(spool_dir, "spooled", true);
  const int64_t deadline = NowMs() + 30000;
  while (ReadFile(out).find("spool-marker-4242") == std::string::npos && NowMs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ReadFile(out), "spool-marker-4242\n");
  EXPECT_FALSE(std::filesystem::exists(err)) << "a spool file for an empty stderr";
  ASSERT_TRUE(Call("kill", {{"task_id", "spooled"}, {"signal", 9}}).ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("spooled"));
  EXPECT_EQ(r.stdout_data, "spool-marker-4242\n");
  ASSERT_TRUE(Call("forget", {{"task_id", "spooled"}}).ok());
  EXPECT_FALSE(std::filesystem::exists(out)) << "the spool file outlived its task";
  EXPECT_TRUE(std::filesystem::is_empty(spool_dir));
}

// A task's tmpfs (its root) is mounted on the zone's state dir in the task's own mount
// namespace only: the host sees no mount there and no directory per task, before, during and
// after the task.
TEST_F(ShimTest, TaskRootIsMountedOnlyInTheTasksNamespace) {
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(state_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = entries();
  ASSERT_OK_AND_ASSIGN(
      started, Call("start", ToJson(Shell("rooted", "echo ready > /tmp/r; exec sleep 60"))));
  // "start" answers once the workload has exec'd: its root is built.
  EXPECT_GT(started["pid"].get<int64_t>(), 0);
  EXPECT_EQ(entries(), before) << "a directory per task in the zone's state dir";
  EXPECT_THAT(ReadFile("/proc/self/mountinfo"), Not(HasSubstr(" " + state_ + " ")))
      << "the task's tmpfs is mounted in the host's namespace";
  ASSERT_TRUE(Call("kill", {{"task_id", "rooted"}, {"signal", 9}}).ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("rooted"));
  EXPECT_EQ(r.start_error, "");
  EXPECT_EQ(entries(), before);
}

TEST_F(ShimTest, WaitAfterReconnect) {
  ASSERT_TRUE(Call("start", ToJson(Spec("w1", {"sleep", "1"}))).ok());
  conn_.reset();
  conn_ = Connect(socket_);
  ASSERT_TRUE(conn_);
  ASSERT_OK_AND_ASSIGN(hello, Call("hello"));
  auto parsed = ShimHelloFromJson(hello);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->zone_id, "zone-1");
  EXPECT_EQ(parsed->pid, pid_);
  ASSERT_EQ(parsed->tasks.size(), 1u);
  EXPECT_EQ(parsed->tasks[0].task_id, "w1");
  EXPECT_TRUE(parsed->tasks[0].running);
  ASSERT_OK_AND_ASSIGN(r, Wait("w1"));
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(again, Wait("w1"));  // results stay until forget
  EXPECT_EQ(again.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(list, Call("list"));
  EXPECT_EQ(list["tasks"][0]["running"], false);
  ASSERT_TRUE(Call("forget", {{"task_id", "w1"}}).ok());
  EXPECT_EQ(Wait("w1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(empty, Call("list"));
  EXPECT_TRUE(empty["tasks"].empty());
}

TEST_F(ShimTest, SocketIsPrivateFromTheStart) {
  // The shim inherits this process's umask (022 under ctest): only the socket's own mode,
  // set before bind, makes it 0600; the shim's umask is left as it was.
  struct stat st;
  ASSERT_EQ(::lstat(socket_.c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  mode_t mine = ::umask(022);
  ::umask(mine);
  char want[16];
  std::snprintf(want, sizeof(want), "Umask:\t%04o\n", mine);
  EXPECT_THAT(ReadFile("/proc/" + std::to_string(pid_) + "/status"), HasSubstr(want));
}

TEST_F(ShimTest, ProtocolErrorsHaveCodes) {
  EXPECT_EQ(Call("frobnicate").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Call("start", {{"task_id", "x"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Call("start", ToJson(Spec("../x", {"true"}))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Call("wait", {{"task_id", "nope"}}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call("kill", {{"task_id", "nope"}, {"signal", 9}}).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Call("start", ToJson(Spec("dup", {"sleep", "5"}))).ok());
  EXPECT_EQ(Call("start", ToJson(Spec("dup", {"true"}))).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Call("forget", {{"task_id", "dup"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Teardown's shutdown kills "dup".
}

TEST_F(ShimTest, MalformedFramesAreRefused) {
  UniqueFd huge = Connect(socket_);
  ASSERT_TRUE(huge);
  const unsigned char header[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::write(huge.get(), header, 4), 4);
  EXPECT_TRUE(ClosedByPeer(huge.get(), 5000)) << "oversized frame did not close the connection";

  UniqueFd garbage = Connect(socket_);
  ASSERT_TRUE(garbage);
  std::string body = "{this is not json";
  std::string frame = {0, 0, 0, static_cast<char>(body.size())};
  frame += body;
  ASSERT_EQ(::write(garbage.get(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  EXPECT_TRUE(ClosedByPeer(garbage.get(), 5000)) << "garbage JSON did not close the connection";

  UniqueFd fresh = Connect(socket_);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(Call(fresh.get(), "hello").ok());
  EXPECT_TRUE(Call("hello").ok());
}

TEST_F(ShimTest, ManyConcurrentTasks) {
  int64_t start = NowMs();
  for (int i = 0; i < 20; ++i) {
    auto r = Call("start", ToJson(Spec("many" + std::to_string(i), {"sleep", "0.2"})));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(r, Wait("many" + std::to_string(i)));
    EXPECT_EQ(r.exit_code, 0) << r.start_error << r.stderr_data;
  }
  EXPECT_LT(NowMs() - start, 15000);
  // The shim removes a task's root directory just after it replies with the result.
  bool empty = false;
  for (int i = 0; i < 200 && !(empty = std::filesystem::is_empty(state_)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(empty) << "task scratch left in the state dir after 10 s";
}

TEST_F(ShimTest, ShimSurvivesClientDisconnectMidWait) {
  ASSERT_TRUE(Call("start", ToJson(Spec("d1", {"sleep", "0.5"}))).ok());
  {
    UniqueFd other = Connect(socket_);
    ASSERT_TRUE(other);
    ASSERT_TRUE(frame::WriteFrame(other.get(), MakeRequest(1, "wait", {{"task_id", "d1"}})).ok());
  }  // closed while its wait is pending
  ASSERT_OK_AND_ASSIGN(r, Wait("d1"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Call("hello").ok());
  EXPECT_EQ(::kill(pid_, 0), 0);
}

TEST_F(ShimTest, KillRequest) {
  ASSERT_TRUE(Call("start", ToJson(Spec("k1", {"sleep", "30"}))).ok());
  int64_t start = NowMs();
  ASSERT_TRUE(Call("kill", {{"task_id", "k1"}, {"signal", 9}}).ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("k1"));
  EXPECT_LT(NowMs() - start, 5000);
  EXPECT_TRUE(r.killed);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_FALSE(r.exit_code.has_value());
}

// The workload runs under an init (PID 1 of the task's pid namespace), so the kernel's rule
// that drops unhandled signals sent to a PID 1 does not apply to it.
TEST_F(ShimTest, SignalToSelfEndsTask) {
  int64_t start = NowMs();
  ASSERT_OK_AND_ASSIGN(r, Run(Shell("self", "kill -TERM $$; sleep 5")));
  EXPECT_LT(NowMs() - start, 3000);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_FALSE(r.killed);
}

TEST_F(ShimTest, KillRequestWithSigtermIsForwarded) {
  ASSERT_TRUE(Call("start", ToJson(Spec("term", {"sleep", "30"}))).ok());
  int64_t start = NowMs();
  ASSERT_TRUE(Call("kill", {{"task_id", "term"}, {"signal", 15}}).ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("term"));
  EXPECT_LT(NowMs() - start, 5000);
  EXPECT_TRUE(r.killed);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_FALSE(r.exit_code.has_value());

  // A signal the workload handles is delivered to it, and the task goes on.
  ASSERT_TRUE(Call("start", ToJson(Shell("trap",
                                         "trap 'echo got-hup' HUP; "
                                         "while [ ! -e /tmp/done ]; do sleep 0.05; done; "
                                         "exit 4")))
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let sh install the trap
  ASSERT_TRUE(Call("kill", {{"task_id", "trap"}, {"signal", "SIGHUP"}}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(Call("kill", {{"task_id", "trap"}, {"signal", "SIGKILL"}}).ok());
  ASSERT_OK_AND_ASSIGN(t, Wait("trap"));
  EXPECT_EQ(t.stdout_data, "got-hup\n");
  EXPECT_EQ(t.signal, SIGKILL);
}

// A daemonized grandchild is reparented to the init, which reaps it. The workload here is
// perl, which never waits: as PID 1 itself it would have left the orphan a zombie.
TEST_F(ShimTest, OrphansAreReaped) {
  const std::string list =
      "sleep 1; opendir(D, q(/proc)); for (grep { /^[0-9]+$/ } readdir D) {"
      " open(F, qq(/proc/$_/stat)) or next; my $l = <F>; $l =~ /\\) (\\S)/;"
      " print qq($_ $1\\n) }";
  ASSERT_OK_AND_ASSIGN(
      r, Run(Spec("orphans", {"sh", "-c", "(sleep 0.2 &) ; exec perl -e '" + list + "'"})));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  std::istringstream lines(r.stdout_data);
  int processes = 0;
  for (std::string line; std::getline(lines, line);) {
    ++processes;
    EXPECT_THAT(line, Not(::testing::EndsWith(" Z"))) << "zombie: " << r.stdout_data;
  }
  EXPECT_EQ(processes, 2) << "the init and perl: " << r.stdout_data;
  EXPECT_THAT(r.stdout_data, HasSubstr("1 S\n"));
}

TEST_F(ShimTest, InitCmdlineHidesHostPaths) {
  ASSERT_OK_AND_ASSIGN(r, Run(Shell("cmdline",
                                    "cat /proc/1/cmdline; echo; cat /proc/1/comm; "
                                    "cat /proc/1/environ >/dev/null 2>&1 || "
                                    "echo environ-denied")));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  std::string out = r.stdout_data;
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  std::string cmdline = out.substr(0, nl);
  EXPECT_THAT(cmdline, ::testing::StartsWith(std::string("rauha-init\0", 11)));
  EXPECT_EQ(cmdline.find_first_not_of('\0', 10), std::string::npos) << "more than the title";
  EXPECT_THAT(out, Not(HasSubstr("--socket")));
  EXPECT_THAT(out, Not(HasSubstr(dir_)));
  EXPECT_EQ(out.substr(nl + 1), "rauha-init\nenviron-denied\n");
}

TEST_F(ShimTest, ExitCodeAndRusageStillReported) {
  ASSERT_OK_AND_ASSIGN(
      r, Run(Shell("busy", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 7")));
  EXPECT_EQ(r.exit_code, 7) << r.stderr_data;
  EXPECT_FALSE(r.signal.has_value());
  EXPECT_GT(r.cpu_user_us + r.cpu_system_us, 10000u) << "a busy loop used no cpu time";
  EXPECT_GT(r.max_rss_kb, 0u);
}

// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1) and bpf(BPF_PROG_LOAD, NULL, 0)
// through python's ctypes: prints each call's errno name ("OK" when it succeeded).
constexpr char kRawSyscalls[] =
    "import ctypes, errno, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for name, nr, args in (('keyctl', 250, (0, -3, 1)), ('bpf', 321, (5, 0, 0))):\n"
    "    rc = libc.syscall(nr, *args)\n"
    "    e = ctypes.get_errno()\n"
    "    print(name, 'OK' if rc >= 0 else errno.errorcode[e])\n";

TEST_F(ShimTest, SeccompDeniesDangerousSyscalls) {
  // CAP_SYS_ADMIN kept and Landlock off: what refuses these calls is the filter alone.
  const std::string script =
      "unshare -m true 2>&1 && echo unshare-ok; "
      "mount -t tmpfs x /tmp 2>&1 && echo mount-ok; "
      "python3 -c \"$1\"; "
      "python3 -c 'import subprocess, threading; subprocess.run([\"true\"], check=True); "
      "t = threading.Thread(target=print, args=(\"thread-ok\",)); t.start(); t.join(); "
      "print(\"spawn-ok\")'";
  TaskSpec spec = Spec("seccomp", {"sh", "-c", script, "sh", kRawSyscalls});
  spec.capabilities = {"CAP_SYS_ADMIN"};
  spec.landlock = false;
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data << r.start_error;
  EXPECT_THAT(r.stdout_data, HasSubstr("unshare failed: Operation not permitted"));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("unshare-ok")));
  EXPECT_THAT(r.stdout_data, HasSubstr("Operation not permitted"));
  EXPECT_THAT(r.stdout_data, Not(HasSubstr("mount-ok")));
  EXPECT_THAT(r.stdout_data, HasSubstr("keyctl EPERM\nbpf EPERM\n"));
  // clone3 answers ENOSYS, so libc's fallback to clone makes the spawn work.
  EXPECT_THAT(r.stdout_data, HasSubstr("thread-ok\nspawn-ok\n"));
  ASSERT_FALSE(r.layers.empty());
  EXPECT_THAT(r.layers[0], ::testing::MatchesRegex("seccomp: [0-9]+ syscalls denied.*"));
  // Each refusal is an event of the task (the mount binary may try more than one call).
  std::set<std::string> objects;
  for (const auto& e : r.enforcement_events) objects.insert(e.object);
  for (const char* call : {"unshare", "mount", "keyctl", "bpf"}) {
    EXPECT_TRUE(objects.contains(call))
        << call << " not among " << ::testing::PrintToString(objects);
  }

  // The same task without the filter: the kernel lets CAP_SYS_ADMIN do all of it.
  spec.task_id = "noseccomp";
  spec.seccomp = false;
  ASSERT_OK_AND_ASSIGN(off, Run(spec));
  EXPECT_THAT(off.stdout_data, HasSubstr("unshare-ok\nmount-ok\n")) << off.stderr_data;
  EXPECT_THAT(off.stdout_data, HasSubstr("keyctl OK\n"));
  EXPECT_THAT(off.stdout_data, Not(HasSubstr("bpf EPERM")));
  EXPECT_TRUE(off.layers.empty()) << ::testing::PrintToString(off.layers);
}

TEST_F(ShimTest, SeccompDenyListFromPolicy) {
  TaskSpec spec = Shell("chmod", "echo x > /tmp/x && chmod 600 /tmp/x && stat -c %a /tmp/x");
  ASSERT_OK_AND_ASSIGN(allowed, Run(spec));
  EXPECT_EQ(allowed.stdout_data, "600\n") << allowed.stderr_data;

  spec.task_id = "nochmod";
  spec.seccomp_deny = {"chmod", "fchmodat"};
  ASSERT_OK_AND_ASSIGN(denied, Run(spec));
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.stderr_data, HasSubstr("Operation not permitted"));
  EXPECT_EQ(denied.stdout_data, "");

  TaskSpec bad = Shell("badsyscall", "true");
  bad.seccomp_deny = {"rauha_no_such_syscall"};
  auto s = Call("start", ToJson(bad));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("rauha_no_such_syscall"));
}

TEST_F(ShimTest, LandlockConfinesWrites) {
  int error = 0;
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, 1u /* VERSION */);
  if (abi < 0) error = errno;
  if (abi < 6) {
    SKIP_OR_FAIL("Landlock ABI >= 6 needed (got " << abi << ", " << std::strerror(error) << ")");
  }
  std::string repo = dir_ + "/repo";
  ASSERT_EQ(::mkdir(repo.c_str(), 0755), 0);
  // /proc/self/comm is the workload's own and writable by it, but outside every writable
  // path; the init (PID 1) is outside the workload's Landlock domain.
  const std::string script =
      "echo a > /workspace/f && echo workspace-ok; "
      "echo b > /tmp/f && echo tmp-ok; "
      "echo c > /var/tmp/f && echo vartmp-ok; "
      "echo d > /dev/null && echo devnull-ok; "
      "echo x > /proc/self/comm && echo comm-written; "
      "kill -0 1 && echo init-signalled; "
      "exit 0";
  TaskSpec spec = Shell("landlock", script);
  spec.mounts = {{repo, "/workspace", false}};
  spec.writable_paths = {"/tmp", "/var/tmp"};
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.stdout_data, "workspace-ok\ntmp-ok\nvartmp-ok\ndevnull-ok\n") << r.stderr_data;
  EXPECT_THAT(r.stderr_data, HasSubstr("Permission denied"));        // comm
  EXPECT_THAT(r.stderr_data, HasSubstr("Operation not permitted"));  // kill
  EXPECT_EQ(ReadFile(repo + "/f"), "a\n");
  ASSERT_EQ(r.layers.size(), 2u) << ::testing::PrintToString(r.layers);
  EXPECT_THAT(r.layers[1], HasSubstr("landlock: ABI " + std::to_string(abi) + ", fs + scope"));

  spec.task_id = "nolandlock";
  spec.landlock = false;
  ASSERT_OK_AND_ASSIGN(off, Run(spec));
  EXPECT_EQ(off.stdout_data,
            "workspace-ok\ntmp-ok\nvartmp-ok\ndevnull-ok\ncomm-written\ninit-signalled\n")
      << off.stderr_data;
  ASSERT_EQ(off.layers.size(), 1u) << ::testing::PrintToString(off.layers);
}

TEST_F(ShimTest, ResultListsLayersApplied) {
  ASSERT_OK_AND_ASSIGN(r, Run(Spec("layers", {"true"})));
  EXPECT_EQ(r.exit_code, 0) << r.start_error;
  ASSERT_GE(r.layers.size(), 1u);
  EXPECT_THAT(r.layers[0], HasSubstr("seccomp: "));
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, 1u);
  if (abi > 0) {
    ASSERT_EQ(r.layers.size(), 2u) << ::testing::PrintToString(r.layers);
    EXPECT_THAT(r.layers[1], ::testing::StartsWith("landlock: ABI "));
  } else {
    EXPECT_THAT(r.warnings, ::testing::Contains(::testing::StartsWith("landlock unavailable: ")));
  }

  TaskSpec bare = Spec("bare", {"true"});
  bare.seccomp = false;
  bare.landlock = false;
  ASSERT_OK_AND_ASSIGN(b, Run(bare));
  EXPECT_TRUE(b.layers.empty());
  EXPECT_TRUE(b.warnings.empty());

  TaskSpec no_nnp = Spec("nonnp", {"true"});
  no_nnp.no_new_privs = false;
  EXPECT_EQ(Call("start", ToJson(no_nnp)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ShimTest, ShutdownKillsRunningTasksAndAnswersWaits) {
  ASSERT_TRUE(Call("start", ToJson(Spec("long", {"sleep", "30"}))).ok());
  ASSERT_TRUE(frame::WriteFrame(conn_.get(), MakeRequest(77, "wait", {{"task_id", "long"}})).ok());
  UniqueFd other = Connect(socket_);
  ASSERT_TRUE(Call(other.get(), "shutdown").ok());
  auto frame = frame::ReadFrame(conn_.get(), 10000);
  ASSERT_TRUE(frame.ok()) << frame.status();
  auto result = ParseResponse(*frame);
  ASSERT_TRUE(result.ok()) << result.status();
  auto r = TaskResultFromJson(*result);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->killed);
  EXPECT_EQ(r->signal, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  pid_ = -1;  // already reaped: teardown checks only what is left behind
}

// Prints "<rc> <errno>" for one unshare(0): refused by the default deny list.
constexpr char kUnshareOnce[] =
    "import ctypes, sys, time\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "rc = libc.unshare(0)\n"
    "print(rc, ctypes.get_errno(), flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n";

uint64_t NsInode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

TEST_F(ShimTest, DeniedSyscallBecomesOneEventLiveAndInResult) {
  // The task sleeps after the denial so the live event can be checked against /proc while
  // its process still exists. Started with "stream": this connection gets the task's frames
  // from its start, so a denial made before the "wait" below arrives is still sent live (a
  // plain start-then-wait races the task: seen once in a loaded full run).
  json spec = ToJson(Spec("deny", {"python3", "-c", kUnshareOnce, "1"}));
  spec["stream"] = true;
  std::vector<json> frames;
  auto started = shim::Call(conn_.get(), "start", spec, 30000, &frames);
  ASSERT_TRUE(started.ok()) << started.status();
  int64_t init_pid = (*started)["pid"].get<int64_t>();
  uint64_t task_pidns = NsInode("/proc/" + std::to_string(init_pid) + "/ns/pid");
  ASSERT_NE(task_pidns, 0u);
  ASSERT_TRUE(frame::WriteFrame(conn_.get(), MakeRequest(901, "wait", {{"task_id", "deny"}})).ok());

  // Frames until the wait's answer: output frames (streamed) pass, event frames are counted.
  std::optional<json> answer;
  for (auto f : frames) ASSERT_TRUE(IsEventFrame(f)) << f.dump();
  while (!answer) {
    auto f = frame::ReadFrame(conn_.get(), 10000);
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->contains("id")) {
      answer = *f;
    } else if (IsEventFrame(*f)) {
      frames.push_back(*f);
      if (frames.size() == 1) {
        // A host pid: /proc here names the same process, in the task's pid namespace.
        auto ev = EnforcementEventFromJson((*f)["event"]);
        ASSERT_TRUE(ev.ok()) << ev.status();
        std::string proc = "/proc/" + std::to_string(ev->pid);
        EXPECT_EQ(NsInode(proc + "/ns/pid"), task_pidns);
        EXPECT_EQ(ReadFile(proc + "/comm"), "python3\n");
      }
    } else {
      EXPECT_TRUE(f->contains("output")) << f->dump();
    }
  }
  ASSERT_EQ(frames.size(), 1u) << "exactly one event frame";
  EXPECT_EQ(frames[0]["task_id"], "deny");
  auto live = EnforcementEventFromJson(frames[0]["event"]);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->layer, "seccomp");
  EXPECT_EQ(live->hook, "seccomp");
  EXPECT_EQ(live->action, "syscall");
  EXPECT_EQ(live->decision, "deny");
  EXPECT_EQ(live->object, "unshare");
  EXPECT_EQ(live->zone_id, "zone-1");
  EXPECT_EQ(live->comm, "python3");
  EXPECT_EQ(live->message, "unshare refused by seccomp (the zone's deny list)");
  EXPECT_EQ(live->pidns_ino, task_pidns);
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_LE(live->time_ns, now);
  EXPECT_GT(live->time_ns, now - int64_t{60} * 1000000000);

  EXPECT_EQ((*answer)["id"], 901);
  auto result = ParseResponse(*answer);
  ASSERT_TRUE(result.ok()) << result.status();
  auto r = TaskResultFromJson(*result);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_EQ(r->stdout_data, "-1 1\n") << "unshare must still fail with EPERM";
  ASSERT_EQ(r->enforcement_events.size(), 1u);
  EXPECT_EQ(r->enforcement_events_lost, 0u);
  EXPECT_EQ(ToJson(r->enforcement_events[0]), ToJson(*live));
}

TEST_F(ShimTest, AllowedSyscallsProduceNoEvents) {
  std::vector<json> events;
  ASSERT_TRUE(Call("start", ToJson(Spec("allowed",
                                        {"python3", "-c", "import os; os.getpid(); print('ok')"})))
                  .ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("allowed", &events));
  EXPECT_EQ(r.stdout_data, "ok\n") << r.stderr_data;
  EXPECT_TRUE(r.enforcement_events.empty()) << ToJson(r).dump();
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(r.enforcement_events_lost, 0u);

  // Without the filter nothing is denied and nothing is reported.
  TaskSpec off = Spec("nofilter", {"python3", "-c", kUnshareOnce, "0"});
  off.seccomp = false;
  off.landlock = false;
  ASSERT_OK_AND_ASSIGN(o, Run(off));
  EXPECT_EQ(o.stdout_data, "0 0\n") << o.stderr_data;
  EXPECT_TRUE(o.enforcement_events.empty());
}

TEST_F(ShimTest, ShimSurvivesAHammeredDeniedSyscall) {
  constexpr int kCalls = 10000;
  const std::string script =
      "import ctypes\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "n = 0\n"
      "for _ in range(" +
      std::to_string(kCalls) +
      "):\n"
      "    if libc.unshare(0) < 0 and ctypes.get_errno() == 1: n += 1\n"
      "print(n)\n";
  std::vector<json> live;
  ASSERT_TRUE(Call("start", ToJson(Spec("hammer", {"python3", "-c", script}))).ok());
  ASSERT_OK_AND_ASSIGN(r, Wait("hammer", &live));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, std::to_string(kCalls) + "\n");
  EXPECT_EQ(r.enforcement_events.size(), kMaxTaskEvents);
  EXPECT_EQ(r.enforcement_events.size() + r.enforcement_events_lost, uint64_t{kCalls});
  // Live frames are best effort: the shim drops them for a client more than 1 MiB behind
  // (kMaxLiveBacklog), which a loaded machine can make of this test's reader. None is
  // invented, and at least the first 1 MiB of them (each well under 1 KiB) arrives.
  EXPECT_LE(live.size(), size_t{kCalls});
  EXPECT_GE(live.size(), size_t{1024});
  ASSERT_TRUE(Call("hello").ok()) << "the shim still answers";
  ASSERT_OK_AND_ASSIGN(after, Run(Spec("after", {"true"})));
  EXPECT_EQ(after.exit_code, 0);
}

TEST_F(ShimTest, ProbeTaskReportsEveryProbeRefused) {
  TaskSpec spec = Spec("probe", {});
  spec.probe = true;
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.exit_code, 0) << r.start_error << r.stderr_data;
  auto probes = ProbeResultsFromJson(r.stdout_data);
  ASSERT_TRUE(probes.ok()) << probes.status() << "\n" << r.stdout_data;
  std::vector<std::string> names;
  for (const auto& p : *probes) {
    names.push_back(p.name);
    EXPECT_TRUE(p.refused) << p.name << ": " << p.detail;
    EXPECT_FALSE(p.errno_name.empty()) << p.name;
    EXPECT_FALSE(p.detail.empty()) << p.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"mount", "namespace", "setns", "bpf", "perf_event_open",
                                      "kernel_module", "keyring", "filesystem.write", "signal.init",
                                      "ptrace.init", "network.egress", "network.raw_socket",
                                      "sysctl.write", "device.mknod", "cgroup.escape"}));
  // The seccomp-refused probes are in the result as events of the probe's processes.
  std::multiset<std::string> objects;
  for (const auto& e : r.enforcement_events) {
    objects.insert(e.object);
    EXPECT_EQ(e.comm, "rauha-probe");
    EXPECT_EQ(e.zone_id, "zone-1");
  }
  EXPECT_EQ(objects, (std::multiset<std::string>{"mount", "unshare", "setns", "bpf",
                                                 "perf_event_open", "finit_module", "add_key"}));

  TaskSpec bad = Spec("badprobe", {"true"});
  bad.probe = true;
  EXPECT_EQ(Call("start", ToJson(bad)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ShimTest, ProbesReportWhatAnUnconfinedTaskCanDo) {
  // No seccomp, no Landlock, capabilities kept: the probes must notice, and undo what they did.
  TaskSpec spec = Spec("open-probe", {});
  spec.probe = true;
  spec.seccomp = false;
  spec.landlock = false;
  spec.capabilities = {"CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_MKNOD"};
  ASSERT_OK_AND_ASSIGN(r, Run(spec));
  EXPECT_EQ(r.exit_code, 0) << r.start_error << r.stderr_data;
  auto probes = ProbeResultsFromJson(r.stdout_data);
  ASSERT_TRUE(probes.ok()) << probes.status() << "\n" << r.stdout_data;
  std::map<std::string, ProbeResult> by_name;
  for (const auto& p : *probes) by_name[p.name] = p;
  for (const char* name :
       {"mount", "keyring", "signal.init", "network.raw_socket", "device.mknod"}) {
    ASSERT_TRUE(by_name.contains(name)) << name;
    EXPECT_FALSE(by_name[name].refused) << name << ": " << by_name[name].detail;
    EXPECT_EQ(by_name[name].errno_name, "") << name;
    EXPECT_THAT(by_name[name].detail, HasSubstr("succeeded")) << name;
  }
  // Still refused without those layers: the task's root has no cgroupfs, /usr is read-only.
  EXPECT_TRUE(by_name["cgroup.escape"].refused) << by_name["cgroup.escape"].detail;
  EXPECT_THAT(by_name["cgroup.escape"].detail, HasSubstr("not reachable"));
  EXPECT_TRUE(by_name["filesystem.write"].refused) << by_name["filesystem.write"].detail;
  EXPECT_TRUE(r.enforcement_events.empty());
  EXPECT_FALSE(std::filesystem::exists("/usr/.rauha-probe"));
  EXPECT_FALSE(std::filesystem::exists("/etc/.rauha-probe"));
}

}  // namespace
}  // namespace rauha::shim
