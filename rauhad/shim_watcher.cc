#include "rauhad/shim_watcher.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/zone_manager.h"

namespace rauha {

ShimWatcher::ShimWatcher(OnExit on_exit) : on_exit_(std::move(on_exit)) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_ || !wake_) {
    std::fprintf(stderr, "rauhad: shim watcher: %s; a shim's death is noticed only when used\n",
                 std::strerror(errno));
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  thread_ = std::thread([this] { Loop(); });
}

ShimWatcher::~ShimWatcher() { Stop(); }

void ShimWatcher::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

absl::Status ShimWatcher::Watch(const std::string& zone_id, pid_t pid) {
  if (!epoll_) return absl::UnavailableError("the shim watcher did not start");
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return ErrnoStatus(errno, StrCat("pidfd_open of the shim of zone ", zone_id));
  // Checked after the pidfd is taken: the pidfd then names the process that passed the check
  // (a pid reused before pidfd_open would fail it).
  if (!ProcessCmdlineContains(pid, zone_id)) {
    return absl::NotFoundError(StrCat("pid ", pid, " is not the shim of zone ", zone_id));
  }
  Unwatch(zone_id);
  std::lock_guard lock(mu_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd.get(), &ev) != 0) {
    return ErrnoStatus(errno, StrCat("watching the shim of zone ", zone_id));
  }
  int fd = pidfd.get();
  fd_of_zone_[zone_id] = fd;
  by_fd_[fd] = Entry{zone_id, pid, std::move(pidfd)};
  return absl::OkStatus();
}

void ShimWatcher::Unwatch(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = fd_of_zone_.find(zone_id);
  if (it == fd_of_zone_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second, nullptr);
  by_fd_.erase(it->second);  // closes the pidfd
  fd_of_zone_.erase(it);
}

void ShimWatcher::Loop() {
  epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "rauhad: shim watcher: epoll_wait: %s\n", std::strerror(errno));
      return;
    }
    std::vector<Entry> exited;
    {
      std::lock_guard lock(mu_);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_.get()) return;
        auto it = by_fd_.find(fd);
        if (it == by_fd_.end()) continue;
        // The event may be for a pidfd unwatched since, whose number a new watch reuses: act
        // only on a pidfd that says its process has exited.
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) != 1) continue;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        fd_of_zone_.erase(it->second.zone_id);
        exited.push_back(std::move(it->second));
        by_fd_.erase(it);
      }
    }
    for (const auto& e : exited) on_exit_(e.zone_id, e.pid);
  }
}

}  // namespace rauha
