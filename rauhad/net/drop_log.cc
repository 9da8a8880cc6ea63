#include "rauhad/net/drop_log.h"

#include <libnetfilter_log/libnetfilter_log.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::net {
namespace {

// An IPv4 header with options (60 bytes) and the ports: all a drop event names.
constexpr uint32_t kCopyBytes = 64;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void DropLog::SetSink(Sink sink) {
  std::lock_guard lock(read_mu_);
  sink_ = std::move(sink);
}

absl::Status DropLog::Start(int netns_fd) {
  std::lock_guard lock(read_mu_);
  if (handle_) return absl::OkStatus();
  nflog_handle* h = nullptr;
  nflog_g_handle* gh = nullptr;
  absl::Status opened = absl::OkStatus();
  auto open = [&] {
    h = nflog_open();
    if (!h) {
      opened = ErrnoStatus(errno, "opening an NFLOG netlink socket");
      return;
    }
    gh = nflog_bind_group(h, group_);
    if (!gh) {
      int err = errno;
      nflog_close(h);
      opened = ErrnoStatus(err, StrCat("binding NFLOG group ", group_,
                                       " (EBUSY: another process in this network namespace, "
                                       "e.g. another rauhad, holds it; see --nflog-group)"));
      return;
    }
    // One message per packet, at once: a task's result is built moments after its last drop.
    if (nflog_set_mode(gh, NFULNL_COPY_PACKET, kCopyBytes) < 0 || nflog_set_qthresh(gh, 1) < 0 ||
        nflog_set_timeout(gh, 0) < 0) {
      int err = errno;
      nflog_unbind_group(gh);
      nflog_close(h);
      opened = ErrnoStatus(err, StrCat("configuring NFLOG group ", group_));
    }
  };
  if (netns_fd < 0) {
    open();
  } else {
    // The socket belongs to the namespace it is made in; a helper thread enters that one only
    // to make it (the reader below runs in rauhad's own).
    std::thread helper([&] {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) {
        opened = ErrnoStatus(errno, "entering the network namespace of the NFLOG socket (setns)");
        return;
      }
      open();
    });
    helper.join();
  }
  if (!opened.ok()) return opened;
  nflog_callback_register(gh, &DropLog::OnPacket, this);
  int fd = nflog_fd(h);
  // Overflow is counted (ENOBUFS), not fatal; a larger buffer makes it rarer.
  int rcvbuf = 1 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) {
    int err = errno;
    nflog_unbind_group(gh);
    nflog_close(h);
    return ErrnoStatus(err, "eventfd");
  }
  handle_ = h;
  group_handle_ = gh;
  stop_ = std::move(stop);
  reader_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void DropLog::Stop() {
  std::thread reader;
  {
    std::lock_guard lock(read_mu_);
    if (!handle_) return;
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof(one));
    reader = std::move(reader_);
  }
  if (reader.joinable()) reader.join();
  std::lock_guard lock(read_mu_);
  nflog_unbind_group(group_handle_);
  nflog_close(handle_);
  handle_ = nullptr;
  group_handle_ = nullptr;
  stop_.reset();
}

void DropLog::Loop() {
  int fd, stop_fd;
  {
    std::lock_guard lock(read_mu_);
    fd = nflog_fd(handle_);
    stop_fd = stop_.get();
  }
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "rauhad: nflog: poll: %s\n", std::strerror(errno));
      return;
    }
    if (p[1].revents) return;
    std::lock_guard lock(read_mu_);
    ReadPendingLocked();
  }
}

void DropLog::Drain() {
  std::lock_guard lock(read_mu_);
  if (handle_) ReadPendingLocked();
}

void DropLog::ReadPendingLocked() {
  std::vector<char> buf(1 << 16);
  int fd = nflog_fd(handle_);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        ++lost_;  // some messages are gone; the socket goes on
        continue;
      }
      return;  // EAGAIN: nothing more now
    }
    if (n == 0) return;
    nflog_handle_packet(handle_, buf.data(), static_cast<int>(n));
  }
}

int DropLog::OnPacket(nflog_g_handle*, nfgenmsg*, nflog_data* data, void* self) {
  auto* log = static_cast<DropLog*>(self);  // read_mu_ is held: called from ReadPendingLocked
  const char* prefix = nflog_get_prefix(data);
  char* payload = nullptr;
  int len = nflog_get_payload(data, &payload);
  if (!prefix || len <= 0 || !log->sink_) return 0;
  auto packet = ParseDroppedPacket(prefix, std::string_view(payload, static_cast<size_t>(len)));
  if (packet) log->sink_(*packet, NowNs());
  return 0;
}

uint64_t DropLog::lost() const {
  std::lock_guard lock(read_mu_);
  return lost_;
}

}  // namespace rauha::net
