#include "rauhad/egress/zone_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <string_view>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

// The zone's side of every proxied connection is a loopback hop inside one host: it never
// congests and has no bottleneck to pace for. A host whose default congestion control paces
// (bbr, this one's) sends the relay's writes to the zone from a pacing timer, skb by skb, in
// whichever task's context the timer fires: measured, the relay and the task spent ~20-25 %
// more CPU per MiB that way (eval/bench/README.md, egress). The listener's congestion control
// is what accepted sockets inherit; cubic does not pace without an fq qdisc, reno is always
// built in. The upstream side keeps the host's choice: that is a real network.
void UseNonPacingCongestionControl(int fd) {
  for (std::string_view cc : {"cubic", "reno"}) {
    if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc.data(),
                     static_cast<socklen_t>(cc.size())) == 0) {
      return;
    }
  }
}

}  // namespace

absl::StatusOr<UniqueFd> ListenInZone(pid_t pid, uint16_t port) {
  std::string ns = StrCat("/proc/", pid, "/ns/net");
  UniqueFd ns_fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns_fd) return ErrnoStatus(errno, StrCat("open ", ns));
  absl::StatusOr<UniqueFd> result = absl::InternalError("not run");
  // setns changes only the calling thread's namespace: a thread of its own, gone afterwards.
  std::thread t([&] {
    if (::setns(ns_fd.get(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, StrCat("setns ", ns));
      return;
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      result = ErrnoStatus(errno, "socket in the zone's network namespace");
      return;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    UseNonPacingCongestionControl(fd.get());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      result = ErrnoStatus(errno, StrCat("bind 127.0.0.1:", port, " in the zone"));
      return;
    }
    if (::listen(fd.get(), 128) != 0) {
      result = ErrnoStatus(errno, "listen in the zone");
      return;
    }
    result = std::move(fd);
  });
  t.join();
  return result;
}

}  // namespace rauha::egress
