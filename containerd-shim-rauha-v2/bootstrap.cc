#include "containerd-shim-rauha-v2/bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "containerd-shim-rauha-v2/bundle.h"
#include "containerd-shim-rauha-v2/events.h"
#include "containerd-shim-rauha-v2/log.h"
#include "containerd-shim-rauha-v2/rootfs_mount.h"
#include "containerd-shim-rauha-v2/sha256_hex.h"
#include "containerd-shim-rauha-v2/task_service.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"
#include "containerd-shim-rauha-v2/zone_runtime.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "rauha-common/errors.h"

namespace rauha::cshim {
namespace {

constexpr char kSocketDir[] = "/run/containerd/s";

std::string BundleDir(const Options& options) {
  if (!options.bundle.empty()) return options.bundle;
  char buf[4096];
  return ::getcwd(buf, sizeof(buf)) ? std::string(buf) : std::string(".");
}

void WriteStdout(const std::string& bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

std::string ShimSocketPath(const std::string& containerd_address, const std::string& ns,
                           const std::string& group_id) {
  std::string key = containerd_address + "\n" + ns + "\n" + group_id;
  return std::string(kSocketDir) + "/" + Sha256Hex(key);
}

absl::Status StartAction(const Options& options) {
  std::string bundle_dir = BundleDir(options);
  auto bundle = LoadBundle(bundle_dir);
  if (!bundle.ok()) return bundle.status();
  std::string path = ShimSocketPath(options.address, options.ns, GroupId(*bundle, options.id));
  std::string address = "unix://" + path;
  auto publish = [&] {
    std::ofstream(bundle_dir + "/address") << address;
    WriteStdout(address);
  };
  // The pod's shim already answers: this task joins it.
  if (ttrpc::ConnectUnix(path).ok()) {
    publish();
    return absl::OkStatus();
  }
  if (::mkdir("/run/containerd", 0711) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir /run/containerd");
  }
  if (::mkdir(kSocketDir, 0711) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, std::string("mkdir ") + kSocketDir);
  }
  auto listener = ttrpc::ListenUnix(path);
  if (!listener.ok()) return listener.status();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // The daemonized shim: its own session, the listener on fd 3, and none of containerd's
    // pipe on 0-2 (containerd reads `start`'s output to EOF).
    ::setsid();
    if (listener->get() != 3) ::dup2(listener->get(), 3);
    ::fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep O_CLOEXEC
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int log =
        ::open((bundle_dir + "/shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(log >= 0 ? log : null, 2);
    std::vector<std::string> args = ToArgs(options);
    args.insert(args.begin(), "containerd-shim-rauha-v2");
    args.push_back("serve");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  publish();
  return absl::OkStatus();
}

absl::Status DeleteAction(const Options& options) {
  std::string bundle_dir = BundleDir(options);
  // The shim is gone, its process may not be: end it in rauhad and forget it (each step may
  // find nothing, e.g. a second delete).
  ZoneRuntime processes(options.rauhad_socket);
  if (processes.KillProcess(options.id, SIGKILL).ok()) {
    (void)processes.WaitProcess(options.id, nullptr, absl::Seconds(10));
  }
  if (auto s = processes.DeleteProcess(options.id); !s.ok()) Log(std::string(s.message()));
  if (auto s = UnmountRootfs(bundle_dir + "/rootfs"); !s.ok()) Log(std::string(s.message()));
  // A task that owned its zone (the pod's sandbox, or a lone container) takes it along.
  if (auto bundle = LoadBundle(bundle_dir); bundle.ok()) {
    std::string group = GroupId(*bundle, options.id);
    // A shim that was killed left its socket file; one that answers is alive and keeps it.
    std::string socket = ShimSocketPath(options.address, options.ns, group);
    if (!ttrpc::ConnectUnix(socket).ok()) ::unlink(socket.c_str());
    if (group == options.id) {
      ZoneRuntime runtime(options.rauhad_socket);
      if (auto s = runtime.RemoveZone(ZoneName(*bundle, group)); !s.ok()) {
        Log(std::string(s.message()));
      }
    }
  }
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  containerd::task::v2::DeleteResponse response;
  response.set_exit_status(128 + SIGKILL);
  response.mutable_exited_at()->set_seconds(now.tv_sec);
  response.mutable_exited_at()->set_nanos(static_cast<int32_t>(now.tv_nsec));
  WriteStdout(response.SerializeAsString());
  return absl::OkStatus();
}

absl::Status ServeAction(const Options& options) {
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd listener(3);
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  sockaddr_un addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::string socket_path = addr.sun_path;

  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  if (!ttrpc_address || !*ttrpc_address) {
    return absl::InvalidArgumentError("TTRPC_ADDRESS is not set (containerd sets it)");
  }
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  {
    ZoneRuntime runtime(options.rauhad_socket);
    EventPublisher events(ttrpc_address, options.ns);
    TaskService tasks(&runtime, &events, [&] {
      std::lock_guard lock(mu);
      done = true;
      cv.notify_all();
    });
    ttrpc::Server server;
    tasks.Register(server);
    server.Serve(std::move(listener));
    Log("serving on " + socket_path);
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    lock.unlock();
    // Stop taking connections first, so no `start` joins a shim that is leaving.
    ::unlink(socket_path.c_str());
    events.Flush();
    server.Shutdown();
  }
  Log("shut down");
  return absl::OkStatus();
}

}  // namespace rauha::cshim
