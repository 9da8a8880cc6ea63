#include "tests/containerd/containerd_fixture.h"

#include <fcntl.h>
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

bool Containerd::Start(std::string* error) {
  // containerd 1.6 and ctr make these whatever the private config says.
  for (const char* d : {"/run/containerd", "/run/containerd/s", "/run/containerd/fifo"}) {
    if (!fs::exists(d)) created_.push_back(d);
  }
  fs::create_directories(dir_ + "/root");
  fs::create_directories(dir_ + "/state");
  std::ofstream(dir_ + "/config.toml") << "version = 2\n"
                                       << "root = \"" << dir_ << "/root\"\n"
                                       << "state = \"" << dir_ << "/state\"\n"
                                       << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                                       << "[grpc]\n  address = \"" << socket_ << "\"\n"
                                       << "[ttrpc]\n  address = \"" << socket_ << ".ttrpc\"\n";
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open((dir_ + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
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
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) fs::remove(*it, ec);
}

int Containerd::Ctr(const std::string& args, std::string* output) const {
  return RunShell("ctr -a " + socket_ + " " + args, output);
}

bool Containerd::ImportLayout(const std::string& layout_dir, std::string* output) const {
  std::string tar = dir_ + "/image.tar";
  if (RunShell("tar -C " + layout_dir + " -cf " + tar + " .", output) != 0) return false;
  return Ctr("images import --base-name localhost/busybox " + tar, output) == 0;
}

std::vector<std::string> Containerd::LeftoverSharedDirs() const {
  std::vector<std::string> left;
  for (const auto& d : created_) {
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
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("containerd-shim-rauha-v2") != std::string::npos &&
        cmdline.find(socket_) != std::string::npos) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

}  // namespace rauha::testing
