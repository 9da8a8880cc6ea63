#include "tests/containerd/containerd_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace rauha::testing {

namespace fs = std::filesystem;

int RunShell(const std::string& command, std::string* output) {
  output->clear();
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) output->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Containerd::Containerd(std::string dir, std::string rauhad_socket)
    : dir_(std::move(dir)), rauhad_socket_(std::move(rauhad_socket)), socket_(dir_ + "/c.sock") {}

Containerd::~Containerd() { Stop(); }

void Containerd::EnableCri(CriSetup setup) {
  cri_ = true;
  cri_setup_ = std::move(setup);
}

namespace {

std::string CriConfig(const CriSetup& s) {
  const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"]\n";
  const std::string runtimes = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.";
  std::ostringstream c;
  c << cri << "  sandbox_image = \"" << s.sandbox_image << "\"\n"
    << "  restrict_oom_score_adj = true\n"        // no CAP_SYS_RESOURCE in this VM (runc)
    << "  netns_mounts_under_state_dir = true\n"  // pod netns mounts stay in our state dir
    << "  stream_server_address = \"127.0.0.1\"\n"
    << "  stream_server_port = \"0\"\n"
    << "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
    << "  bin_dir = \"" << s.cni_bin_dir << "\"\n"
    << "  conf_dir = \"" << s.cni_conf_dir << "\"\n"
    << "  max_conf_num = 1\n"
    << "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
    << "  snapshotter = \"overlayfs\"\n"
    << "  default_runtime_name = \"runc\"\n"
    << runtimes << "runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
    << runtimes << "rauha]\n  runtime_type = \"io.containerd.rauha.v2\"\n"
    << "  pod_annotations = [\"rauha.io/*\"]\n"
    << "  container_annotations = [\"rauha.io/*\"]\n";
  if (!s.config_path.empty()) {
    c << runtimes << "rauha.options]\n"
      << "  TypeUrl = \"rauha.policy.v1\"\n"
      << "  ConfigPath = \"" << s.config_path << "\"\n";
  }
  return c.str();
}

}  // namespace

bool Containerd::Start(std::string* error) {
  // containerd 1.6 and ctr make these whatever the private config says.
  for (const char* d : {"/run/containerd", "/run/containerd/s", "/run/containerd/fifo"}) {
    if (!fs::exists(d)) created_.push_back(d);
  }
  if (cri_) {
    // CRI's runc pods (the benchmark's and tests' comparison) and libcni's result cache.
    for (const char* d : {"/run/containerd/runc", "/var/lib/cni"}) {
      if (!fs::exists(d)) created_.push_back(d);
    }
    for (const char* h : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                          "pids", "systemd", "unified"}) {
      for (const char* ns : {"k8s.io", "default"}) {
        std::string d = std::string("/sys/fs/cgroup/") + h + "/" + ns;
        if (fs::exists(std::string("/sys/fs/cgroup/") + h) && !fs::exists(d)) {
          created_cgroups_.push_back(d);
        }
      }
    }
  }
  fs::create_directories(dir_ + "/root");
  fs::create_directories(dir_ + "/state");
  std::ofstream(dir_ + "/config.toml")
      << "version = 2\n"
      << "root = \"" << dir_ << "/root\"\n"
      << "state = \"" << dir_ << "/state\"\n"
      << (cri_ ? "" : "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n")
      << "[grpc]\n  address = \"" << socket_ << "\"\n"
      << "[ttrpc]\n  address = \"" << socket_ << ".ttrpc\"\n"
      << (cri_ ? CriConfig(cri_setup_) : "");
  pid_ = ::fork();
  if (pid_ == 0) {
    // Appended: a restarted containerd's log follows the first one's.
    int log = ::open((dir_ + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    if (cri_) {
      // As `nsenter --net=`: only the network namespace changes (`ip netns exec` would also
      // remount /sys and hide the cgroup mounts). CNI's bridge and addresses stay in it.
      if (cri_setup_.netns_fd >= 0 && ::setns(cri_setup_.netns_fd, CLONE_NEWNET) < 0) ::_exit(126);
      // containerd looks for a runtime's shim in its working directory first: ours must not
      // hold a directory of that name (the source tree does).
      if (::chdir(dir_.c_str()) != 0) ::_exit(125);
      if (!cri_setup_.shim_dir.empty()) {
        const char* path = ::getenv("PATH");
        ::setenv("PATH", (cri_setup_.shim_dir + ":" + (path ? path : "/usr/bin:/bin")).c_str(), 1);
      }
      if (!cri_setup_.policy_dir.empty()) {
        ::setenv("RAUHA_POLICY_DIR", cri_setup_.policy_dir.c_str(), 1);
      }
    }
    ::setenv("RAUHA_SOCKET", rauhad_socket_.c_str(), 1);
    ::execlp("containerd", "containerd", "--config", (dir_ + "/config.toml").c_str(), nullptr);
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string out;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "containerd exited: " + log();
      return false;
    }
    if (fs::exists(socket_) && Ctr("version", &out) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *error = "containerd did not answer within 20 s: " + out + log();
  return false;
}

void Containerd::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  // The shim's socket directory (and its parent) when this test made them and they are empty
  // again (another containerd on the machine may be using them).
  std::error_code ec;
  // containerd 1.6 leaves its namespaces' empty cgroups behind: ours go (rmdir: only if empty).
  for (const auto& d : created_cgroups_) ::rmdir(d.c_str());
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    // /run/containerd/runc/<ns> and /var/lib/cni/{results,networks}: ours, when empty.
    if (fs::is_directory(*it, ec)) {
      for (const auto& sub : fs::directory_iterator(*it, ec)) {
        if (sub.is_directory()) fs::remove(sub.path(), ec);
      }
    }
    fs::remove(*it, ec);
  }
}

bool Containerd::Restart(std::string* error) {
  if (pid_ <= 0) {
    *error = "containerd is not running";
    return false;
  }
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return Start(error);
}

int Containerd::Ctr(const std::string& args, std::string* output) const {
  return RunShell("ctr -a " + socket_ + " " + args, output);
}

bool Containerd::ImportLayout(const std::string& layout_dir, std::string* output) const {
  std::string tar = dir_ + "/image.tar";
  if (RunShell("tar -C " + layout_dir + " -cf " + tar + " .", output) != 0) return false;
  return Ctr("images import --base-name localhost/busybox " + tar, output) == 0;
}

bool Containerd::ImportLayoutAs(const std::string& layout_dir, const std::string& ns,
                                const std::string& name, std::string* output) const {
  std::string tar = dir_ + "/image-" + std::to_string(std::hash<std::string>()(name)) + ".tar";
  if (RunShell("tar -C " + layout_dir + " -cf " + tar + " .", output) != 0) return false;
  return Ctr("-n " + ns + " images import --base-name " + name + " " + tar, output) == 0;
}

std::vector<std::string> Containerd::LeftoverSharedDirs() const {
  std::vector<std::string> left;
  for (const auto& d : created_) {
    if (fs::exists(d)) left.push_back(d);
  }
  for (const auto& d : created_cgroups_) {
    if (fs::exists(d)) left.push_back(d);
  }
  return left;
}

std::string Containerd::log() const {
  std::ifstream in(dir_ + "/containerd.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<pid_t> Containerd::ShimPids() const {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    // Read with read(2): a process that exits meanwhile (the short-lived `shim delete`) fails
    // it with ESRCH, which an ifstream turns into an exception.
    std::string cmdline;
    int fd = ::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) cmdline.append(buf, n);
    ::close(fd);
    if (cmdline.find("containerd-shim-rauha-v2") != std::string::npos &&
        cmdline.find(socket_) != std::string::npos) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

}  // namespace rauha::testing
