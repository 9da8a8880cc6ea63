#include "containerd-shim-rauha-v2/oom_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rauha::cshim {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(what + ": " + std::strerror(errno));
}

uint64_t OomKills(const std::string& memory_events) {
  std::ifstream in(memory_events);
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OomWatcher>> OomWatcher::Watch(pid_t pid,
                                                              std::function<void()> on_oom) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  if (!in) return absl::NotFoundError("process " + std::to_string(pid) + " is gone");
  std::string v1_memory, v2_path;
  for (std::string line; std::getline(in, line);) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    std::stringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) {
      if (c == "memory") v1_memory = "/sys/fs/cgroup/memory" + path;
    }
    if (line.rfind("0::", 0) == 0) v2_path = path;
  }
  std::unique_ptr<OomWatcher> w(new OomWatcher());
  w->on_oom_ = std::move(on_oom);
  w->stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!w->stop_) return Errno("eventfd");
  if (!v1_memory.empty()) {
    // v1: the kernel signals the eventfd at each OOM of the cgroup (or its descendants).
    UniqueFd control(::open((v1_memory + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC));
    if (!control) return Errno("open " + v1_memory + "/memory.oom_control");
    w->event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!w->event_) return Errno("eventfd");
    UniqueFd register_fd(
        ::open((v1_memory + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
    if (!register_fd) return Errno("open " + v1_memory + "/cgroup.event_control");
    std::string line = std::to_string(w->event_.get()) + " " + std::to_string(control.get());
    if (::write(register_fd.get(), line.data(), line.size()) < 0) {
      return Errno("register an OOM eventfd in " + v1_memory);
    }
    // The registration holds its own reference to memory.oom_control.
  } else {
    std::string dir = "/sys/fs/cgroup" + v2_path;
    w->events_ = dir + "/memory.events";
    if (::access(w->events_.c_str(), R_OK) != 0) {
      return absl::NotFoundError("no memory controller for process " + std::to_string(pid));
    }
    w->v2_ = true;
    w->event_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!w->event_) return Errno("inotify_init1");
    if (::inotify_add_watch(w->event_.get(), w->events_.c_str(), IN_MODIFY) < 0) {
      return Errno("inotify_add_watch " + w->events_);
    }
    w->oom_kills_ = OomKills(w->events_);
  }
  w->thread_ = std::thread([p = w.get()] { p->Loop(); });
  return w;
}

OomWatcher::~OomWatcher() { Stop(); }

void OomWatcher::Loop() {
  while (true) {
    pollfd fds[2] = {{event_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (fds[0].revents) Collect();
  }
}

void OomWatcher::Collect() {
  std::lock_guard lock(mu_);
  if (!v2_) {
    uint64_t count = 0;
    if (::read(event_.get(), &count, sizeof(count)) == sizeof(count) && count > 0) on_oom_();
    return;
  }
  char buf[4096];
  while (::read(event_.get(), buf, sizeof(buf)) > 0) {
  }
  uint64_t kills = OomKills(events_);
  if (kills > oom_kills_) {
    oom_kills_ = kills;
    on_oom_();
  }
}

void OomWatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  Collect();
}

}  // namespace rauha::cshim
