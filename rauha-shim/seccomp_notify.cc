#include "rauha-shim/seccomp_notify.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/seccomp.h"

namespace rauha::shim {

absl::Status SendFd(int sock, int fd) {
  char byte = 'L';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "seccomp: send the listener to the shim");
  }
  return absl::OkStatus();
}

UniqueFd ReceiveFd(int sock) {
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return UniqueFd();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
      return UniqueFd(fd);
    }
  }
  return UniqueFd();
}

bool NotificationPending(int fd) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & POLLIN);
}

namespace {

std::string ReadComm(uint32_t pid) {
  std::string path = StrCat("/proc/", pid, "/comm");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n <= 0) return "";
  std::string comm(buf, static_cast<size_t>(n));
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

}  // namespace

absl::StatusOr<std::optional<SeccompDenial>> AnswerNotification(int listener) {
  // The kernel refuses a RECV buffer that is not zeroed.
  seccomp_notif req;
  std::memset(&req, 0, sizeof(req));
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
    // ENOENT: the caller was killed between the wake-up and the RECV.
    if (errno == ENOENT || errno == EINTR) return std::nullopt;
    return ErrnoStatus(errno, "seccomp: SECCOMP_IOCTL_NOTIF_RECV");
  }
  SeccompDenial denial;
  denial.pid = req.pid;
  denial.syscall = SyscallName(req.data.arch, req.data.nr);
  denial.arg0 = req.data.args[0];
  denial.comm = ReadComm(req.pid);
  // The pid was read from the notification and /proc/<pid> opened afterwards: only while the
  // notification is still valid is the caller alive and blocked, so the pid cannot have been
  // reused for the comm read.
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0) denial.comm.clear();
  seccomp_notif_resp resp;
  std::memset(&resp, 0, sizeof(resp));
  resp.id = req.id;
  resp.error = -EPERM;
  resp.val = 0;
  resp.flags = 0;
  // ENOENT: the caller was killed while waiting; its syscall never ran. Still a denial.
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "seccomp: SECCOMP_IOCTL_NOTIF_SEND");
  }
  return denial;
}

}  // namespace rauha::shim
