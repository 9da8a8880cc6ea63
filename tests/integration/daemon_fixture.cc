#include "tests/integration/daemon_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "rauha-common/cgroup_layout.h"
#include "rauhad/linux/bpf/pin_dir.h"

namespace rauha::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitExit(pid_t pid, int timeout_ms) {
  for (int i = 0; i < timeout_ms / 10; ++i) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int counter = 0;

// rauhad keeps a warm zone pool by default (--warm-zones 2). Tests get none unless they ask
// (--warm-zones N in their arguments) or RAUHA_TEST_WARM_ZONES=N says so for the whole run:
// a test that counts zones, cgroups or audit records then sees only its own.
void AddWarmZones(std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--warm-zones" || a.rfind("--warm-zones=", 0) == 0) return;
  }
  const char* env = std::getenv("RAUHA_TEST_WARM_ZONES");
  args.push_back("--warm-zones");
  args.push_back(env && *env ? env : "0");
}

}  // namespace

bool RequireAll() {
  const char* v = std::getenv("RAUHA_TEST_REQUIRE_ALL");
  return v && std::string(v) == "1";
}

Daemon::Daemon(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  char tmpl[] = "/tmp/rauha-itest-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  if (!d) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = d;
  socket_ = dir_ + "/rauhad.sock";
  run_dir_ = dir_ + "/run";
  state_dir_ = dir_ + "/state";
  cgroup_parent_ = "rauha-itest-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  pin_dir_ = std::string(bpf::kBpffsMount) + "/" + cgroup_parent_;
}

Daemon::~Daemon() {
  if (pid_ > 0) Stop();
  // A test that ended with rauhad killed leaves its pins: they would keep programs attached.
  if (!pin_dir_.empty()) (void)bpf::RemovePinTree(pin_dir_);
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

void Daemon::Start() {
  std::vector<std::string> args = {RAUHAD_BIN,     "--socket",    socket_,        "--run-dir",
                                   run_dir_,       "--state-dir", state_dir_,     "--cgroup-parent",
                                   cgroup_parent_, "--shim-path", RAUHA_SHIM_BIN, "--bpf-pin-dir",
                                   pin_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  AddWarmZones(args);
  std::string log_path = dir_ + "/rauhad.log";
  const size_t log_before = log().size();  // a restart appends to the same log
  int netns_fd = -1;
  if (!netns_.empty()) {
    netns_fd = ::open(netns_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(netns_fd, 0) << "open " << netns_ << ": " << std::strerror(errno);
  }
  // A crashed rauhad leaves its socket: waiting for the file must wait for this rauhad's.
  if (!std::exchange(keep_stale_socket_, false)) ::unlink(socket_.c_str());
  pid_ = ::fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    FILE* log = std::fopen(log_path.c_str(), "a");
    if (log) {
      ::dup2(fileno(log), 1);
      ::dup2(fileno(log), 2);
    }
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "setns %s: %s\n", netns_.c_str(), std::strerror(errno));
      ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (netns_fd >= 0) ::close(netns_fd);
  // Wait for the socket first: a gRPC channel that fails its first connect backs off ~1 s.
  for (int i = 0; i < 2000 && ::access(socket_.c_str(), F_OK) != 0; ++i) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "rauhad exited during start-up; log:\n" << log();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto channel = Channel();
  bool up = channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(up) << "rauhad did not come up; log:\n" << log();
  // A connect can succeed (on a kept stale socket's path too) before rauhad's health status:
  // its "listening on" line comes after it.
  auto listening = [&] { return log().find(": listening on ", log_before) != std::string::npos; };
  for (int i = 0; i < 2000 && !listening(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(listening()) << "rauhad did not finish its start-up; log:\n" << log();
}

int Daemon::StartExpectingExit(int timeout_ms) {
  std::vector<std::string> args = {RAUHAD_BIN,      "--socket",        socket_,
                                   "--run-dir",     dir_ + "/run",     "--state-dir",
                                   dir_ + "/state", "--cgroup-parent", cgroup_parent_,
                                   "--shim-path",   RAUHA_SHIM_BIN};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  AddWarmZones(args);
  std::string log_path = dir_ + "/rauhad.log";
  pid_t pid = ::fork();
  if (pid < 0) return -2;
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    FILE* log = std::fopen(log_path.c_str(), "a");
    if (log) {
      ::dup2(fileno(log), 1);
      ::dup2(fileno(log), 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < timeout_ms / 10; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // It started after all: keep it, so the test's own stop (and its checks) apply.
  pid_ = pid;
  return -1;
}

int64_t Daemon::Stop() {
  if (pid_ <= 0) return 0;
  const auto start = std::chrono::steady_clock::now();
  ::kill(pid_, SIGTERM);
  bool exited = WaitExit(pid_, 20000);
  const int64_t elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
  if (!exited) {
    ADD_FAILURE() << "rauhad did not stop within 20 s after SIGTERM; log:\n" << log();
    ::kill(pid_, SIGKILL);
    WaitExit(pid_, 5000);
  }
  pid_ = -1;
  return elapsed_ms;
}

void Daemon::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  WaitExit(pid_, 5000);
  pid_ = -1;
}

std::string Daemon::log() const { return ReadFile(dir_ + "/rauhad.log"); }

int64_t Daemon::StatusKiB(const std::string& field) const {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid_) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

int Daemon::ThreadCount() const {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

std::shared_ptr<grpc::Channel> Daemon::Channel() {
  return grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
}

std::unique_ptr<rauha::zone::v1::ZoneService::Stub> Daemon::Zones() {
  return rauha::zone::v1::ZoneService::NewStub(Channel());
}

std::string Daemon::ZoneId(const std::string& name) {
  rauha::zone::v1::GetZoneRequest req;
  req.set_name(name);
  rauha::zone::v1::GetZoneResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = Zones()->GetZone(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << "GetZone " << name << ": " << st.error_message();
  return st.ok() ? resp.zone().id() : "";
}

std::unique_ptr<rauha::sandbox::v1::SandboxService::Stub> Daemon::Sandbox() {
  return rauha::sandbox::v1::SandboxService::NewStub(Channel());
}

std::vector<std::string> Daemon::LeftoverCgroups() const {
  std::vector<std::string> out;
  auto layout = DetectCgroupLayout();
  if (!layout.ok()) return out;
  std::vector<std::string> roots;
  if (!layout->unified_mount.empty()) roots.push_back(layout->unified_mount);
  for (const auto& [ctrl, mount] : layout->v1_mounts) roots.push_back(mount);
  for (const auto& root : roots) {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it.depth() > 4) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory(ec) && it->path().filename() == cgroup_parent_) {
        out.push_back(it->path().string());
      }
    }
  }
  return out;
}

std::vector<std::string> Daemon::LeftoverMounts() const {
  std::vector<std::string> out;
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  std::string line;
  // While rauhad runs, the tmpfs it mounts on its zones' dir (rauhad/zones_tmpfs.h) is its own,
  // not something a zone left; after its stop (or a crash) it counts like any other mount.
  const std::string zones_tmpfs = " " + run_dir_ + "/zones ";
  while (std::getline(in, line)) {
    if (line.find(dir_) == std::string::npos) continue;
    if (pid_ > 0 && line.find(zones_tmpfs) != std::string::npos &&
        line.find(" - tmpfs rauha-zones ") != std::string::npos) {
      continue;
    }
    out.push_back(line);
  }
  return out;
}

std::vector<pid_t> Daemon::LeftoverProcesses() const {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    if (cmdline.find(dir_) != std::string::npos) out.push_back(pid);
  }
  return out;
}

std::string Daemon::WaitForRunningTask() {
  for (int i = 0; i < 200; ++i) {
    rauha::sandbox::v1::ListTasksResponse tasks;
    grpc::ClientContext ctx;
    if (Sandbox()->ListTasks(&ctx, {}, &tasks).ok() && tasks.tasks_size() == 1 &&
        tasks.tasks(0).pid() != 0) {
      return tasks.tasks(0).task_id();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

void DaemonTest::SetUp() {
  if (::geteuid() != 0) {
    if (RequireAll()) FAIL() << "integration tests need root";
    GTEST_SKIP() << "integration tests need root";
  }
  daemon_ = std::make_unique<Daemon>();
  daemon_->Start();
}

void DaemonTest::TearDown() {
  if (!daemon_) return;
  daemon_->Stop();
  EXPECT_TRUE(daemon_->LeftoverProcesses().empty()) << "processes left after rauhad stopped";
  EXPECT_TRUE(daemon_->LeftoverMounts().empty()) << "mounts left after rauhad stopped";
  auto cgroups = daemon_->LeftoverCgroups();
  EXPECT_TRUE(cgroups.empty()) << "cgroups left after rauhad stopped: "
                               << (cgroups.empty() ? "" : cgroups[0]);
  struct stat st {};
  EXPECT_NE(::lstat(daemon_->pin_dir().c_str(), &st), 0)
      << "BPF pins left after rauhad stopped in " << daemon_->pin_dir();
  (void)bpf::RemovePinTree(daemon_->pin_dir());
  // Stop only what this test started, by pid, so the next test starts clean.
  for (pid_t pid : daemon_->LeftoverProcesses()) ::kill(pid, SIGKILL);
  daemon_.reset();
}

rauha::sandbox::v1::SandboxResult DaemonTest::Run(const std::vector<std::string>& command,
                                                  rauha::sandbox::v1::RunSandboxRequest request,
                                                  grpc::Status* status_out) {
  for (const auto& c : command) request.add_command(c);
  rauha::sandbox::v1::SandboxResult result;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  grpc::Status status = daemon_->Sandbox()->RunSandbox(&ctx, request, &result);
  if (status_out) {
    *status_out = status;
  } else {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return result;
}

grpc::Status DaemonTest::CreateZone(const std::string& name, const std::string& policy_toml,
                                    const std::string& zone_type) {
  rauha::zone::v1::CreateZoneRequest req;
  req.set_name(name);
  req.set_policy_toml(policy_toml);
  req.set_zone_type(zone_type);
  rauha::zone::v1::CreateZoneResponse resp;
  grpc::ClientContext ctx;
  return daemon_->Zones()->CreateZone(&ctx, req, &resp);
}

std::string PolicyWith(const std::string& resources_lines, const std::string& extra_tables,
                       const std::string& capabilities) {
  std::string caps = capabilities.empty()
                         ? "\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_FOWNER\", \"CAP_KILL\""
                         : capabilities;
  if (capabilities == "none") caps = "";
  return "[zone]\ntype = \"non-global\"\n\n[capabilities]\nallowed = [" + caps +
         "]\n\n[resources]\n" + resources_lines +
         "\n\n[network]\nmode = \"isolated\"\n\n[filesystem]\nwritable_paths = [\"/tmp\"]\n\n"
         "[devices]\nallowed = [\"/dev/null\", \"/dev/zero\", \"/dev/urandom\", "
         "\"/dev/random\"]\n" +
         extra_tables;
}

bool PooledZoneReady(const Daemon& daemon, const std::string& zone_id) {
  // The zone's name is on its shim's command line ("--zone-id ID --zone-name NAME").
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + pid + "/cmdline");
    std::vector<std::string> args;
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    if (args.empty() || args[0].find("rauha-shim") == std::string::npos) continue;
    auto id = std::find(args.begin(), args.end(), "--zone-id");
    auto name = std::find(args.begin(), args.end(), "--zone-name");
    if (id == args.end() || id + 1 == args.end() || *(id + 1) != zone_id) continue;
    if (name == args.end() || name + 1 == args.end()) return false;
    return daemon.log().find("warm pool: zone " + *(name + 1) + " ready\n") != std::string::npos;
  }
  return false;
}

}  // namespace rauha::testing
